// A call made in another process's thread that returns to where the thread was by itself: the
// registers of a thread stopped by ptrace are rewritten so that it calls a function, and the
// function returns into glibc's signal-return stub over a signal frame that holds the thread's
// own registers, vector state and signal mask. The tracer detaches before the call runs, so the
// thread is held only while its frame is written, and a tracer killed at any point leaves a
// thread that either never saw the change or finishes the call and resumes unchanged.
#pragma once
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>
#include <vector>

namespace graft::arch {

// What ptrace shows of a stopped thread.
struct RemoteThread {
    user_regs_struct regs{};
    std::vector<uint8_t> xstate;  // PTRACE_GETREGSET NT_X86_XSTATE: the kernel's signal-frame layout
};

// How a thread stopped at a system call's exit would go on.
enum class SyscallExit {
    kNone,      // not stopped at a system call's exit (it was running user code)
    kRestarts,  // the call restarts by itself when resumed (ERESTARTSYS/NOINTR/NOHAND/RESTARTBLOCK)
    kEintr,     // the stop made an interruptible call fail with EINTR (epoll_wait, semop...)
    kReturned,  // the call had returned its own result
};

bool read_remote_thread(pid_t tid, RemoteThread *t, std::string *err);

// The architecture a seccomp filter sees in seccomp_data.arch for this process's calls.
constexpr uint32_t kSeccompArch = 0xc000003eu;  // AUDIT_ARCH_X86_64
SyscallExit syscall_exit_of(const RemoteThread &t);
uint64_t remote_pc(const RemoteThread &t);
uint64_t remote_sp(const RemoteThread &t);
uint64_t remote_fp(const RemoteThread &t);  // the frame-pointer register (rbp)

// The address, relative to the start of `code` (an executable segment's bytes), of the
// `rt_sigreturn` instruction sequence glibc's restorer is made of; -1 if there is none.
long find_sigreturn_stub(const uint8_t *code, size_t size);

// Whether system call `nr`, interrupted by a ptrace stop, restarts by itself (with the time it
// had left) rather than failing with EINTR: the calls a blocked thread may be borrowed in.
bool syscall_restarts_after_stop(long nr);
// Which of a socket's timeouts makes call `nr` (one that restarts otherwise) fail with EINTR
// after a stop when its first argument is a socket: SO_RCVTIMEO for the calls that receive or
// accept, SO_SNDTIMEO for those that send (signal(7), "Interruption of system calls and library
// functions by stop signals"); 0 for a call that takes no socket.
int socket_timeout_option(long nr);
// The system call a thread is blocked in, from the first field of /proc/PID/task/TID/syscall.
long blocked_syscall_nr(const std::string &syscall_line);

// What prepare_call_then_return() makes the thread do: fn(arg0_string, arg1), then back.
struct RemoteCall {
    uint64_t fn = 0;
    std::string arg0_string;  // copied below the thread's red zone; the call gets its address
    uint64_t arg1 = 0;
    uint64_t sigreturn_stub = 0;
    uint64_t sigmask = 0;              // the thread's blocked signals, restored with its registers
    const int *saved_errno = nullptr;  // if known: left for the agent (common/attach_record.hpp)
};

// Rewrites stopped thread `tid` (memory through `mem_fd`, /proc/PID/mem opened read-write) to make
// call `c`, then return through `c.sigreturn_stub` to the state in `t`. A call interrupted at a
// system call's exit (kRestarts, and kEintr caused by the stop) is set up to be issued again.
bool prepare_call_then_return(pid_t tid, int mem_fd, const RemoteThread &t, const RemoteCall &c,
                              std::string *err);

// In the code of glibc's __errno_location, the offset (from the function's start) of the GOT
// slot that holds errno's offset from the thread pointer; -1 if the code has another shape.
long errno_tpoff_slot(const uint8_t *code, size_t size);
uint64_t thread_pointer(const RemoteThread &t);

}  // namespace graft::arch
