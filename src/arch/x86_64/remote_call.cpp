// x86-64 side of a call made in another process's thread (remote_call.hpp). The frame written
// below the thread's stack is the kernel's rt_sigframe as rt_sigreturn reads it
// (arch/x86/kernel/signal_64.c): the return address, then struct ucontext with the thread's
// registers, its signal mask, and a pointer to its XSAVE area in the signal-frame format.
#include "arch/x86_64/remote_call.hpp"

#include "common/attach_record.hpp"

#include <elf.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>

namespace graft::arch {
namespace {

// The kernel's own numbers (include/linux/errno.h): never seen by user space, only by a tracer
// that stops a thread at a system call's exit.
constexpr long kErestartSys = 512, kErestartNoIntr = 513, kErestartNoHand = 514, kErestartRestartBlock = 516;
constexpr uint64_t kUcFpXstate = 1, kUcSigcontextSs = 2;
constexpr uint32_t kFpXstateMagic1 = 0x46505853, kFpXstateMagic2 = 0x46505845;
constexpr size_t kRedZone = 128;
constexpr size_t kSwReservedOffset = 464;  // struct _fpx_sw_bytes inside the legacy FXSAVE area

// struct ucontext of the kernel (not glibc's ucontext_t: its sigset is 8 bytes, and no
// __fpregs_mem follows).
struct KernelUcontext {
    uint64_t uc_flags;
    uint64_t uc_link;
    uint64_t ss_sp;
    int32_t ss_flags;
    int32_t ss_pad;
    uint64_t ss_size;
    // struct sigcontext: the order of glibc's REG_* indices.
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags;
    uint16_t cs, gs, fs, ss;
    uint64_t err, trapno, oldmask, cr2, fpstate;
    uint64_t reserved1[8];
    uint64_t sigmask;
};
static_assert(sizeof(KernelUcontext) == 304, "the kernel's struct ucontext on x86-64");

struct FpxSwBytes {
    uint32_t magic1, extended_size;
    uint64_t xfeatures;
    uint32_t xstate_size;
    uint32_t padding[7];
};
static_assert(sizeof(FpxSwBytes) == 48, "struct _fpx_sw_bytes");

bool fail(std::string *err, const std::string &what) {
    *err = what + " (" + std::strerror(errno) + ")";
    return false;
}

// The registers the thread goes back to: a system call the stop interrupted is set up to be
// issued again with its own arguments (the kernel preserves them across the call). The kernel
// would resume a call with a restart block (nanosleep, poll, a futex wait with a timeout) with the
// time it had left, but rt_sigreturn voids the restart block (it makes restart_syscall fail with
// EINTR), so such a call starts over with its whole timeout: a later return, never an early one.
user_regs_struct resumed_regs(const RemoteThread &t) {
    user_regs_struct r = t.regs;
    switch (syscall_exit_of(t)) {
        case SyscallExit::kRestarts:
        case SyscallExit::kEintr:
            r.rax = r.orig_rax;
            r.rip -= 2;  // back onto the 2-byte `syscall` instruction
            break;
        default:
            break;
    }
    return r;
}

KernelUcontext make_ucontext(const user_regs_struct &r, uint64_t fpstate, uint64_t sigmask) {
    KernelUcontext uc{};
    uc.uc_flags = kUcSigcontextSs | (fpstate ? kUcFpXstate : 0);
    // rt_sigreturn applies uc_stack with sigaltstack() and ignores its errors: flags that are no
    // valid mode make it fail with EINVAL before it changes anything, so the thread keeps its
    // own alternate signal stack, which a tracer cannot read.
    uc.ss_flags = 3;
    uc.r8 = r.r8, uc.r9 = r.r9, uc.r10 = r.r10, uc.r11 = r.r11, uc.r12 = r.r12, uc.r13 = r.r13;
    uc.r14 = r.r14, uc.r15 = r.r15, uc.rdi = r.rdi, uc.rsi = r.rsi, uc.rbp = r.rbp, uc.rbx = r.rbx;
    uc.rdx = r.rdx, uc.rax = r.rax, uc.rcx = r.rcx, uc.rsp = r.rsp, uc.rip = r.rip, uc.eflags = r.eflags;
    uc.cs = static_cast<uint16_t>(r.cs);
    uc.ss = static_cast<uint16_t>(r.ss);
    uc.fpstate = fpstate;
    uc.sigmask = sigmask;
    return uc;
}

bool write_remote(int mem_fd, uint64_t addr, const void *p, size_t n, std::string *err) {
    if (pwrite(mem_fd, p, n, static_cast<off_t>(addr)) == static_cast<ssize_t>(n)) return true;
    return fail(err, "cannot write the thread's stack at " + std::to_string(addr));
}

// The XSAVE area as a signal frame carries it: the ptrace copy (the standard, uncompacted layout
// of the process's user xstate size), with the software bytes a signal frame has at 464 in place
// of the XCR0 value ptrace puts there, and the second magic word right after it.
bool frame_xstate(const std::vector<uint8_t> &xs, std::vector<uint8_t> *out, std::string *err) {
    if (xs.size() < kSwReservedOffset + sizeof(FpxSwBytes) || xs.size() > (1u << 20)) {
        errno = EPROTO;
        return fail(err, "its vector state (" + std::to_string(xs.size()) + " bytes) has no XSAVE layout");
    }
    uint64_t xcr0 = 0;
    std::memcpy(&xcr0, xs.data() + kSwReservedOffset, sizeof xcr0);
    FpxSwBytes sw{};
    sw.magic1 = kFpXstateMagic1;
    sw.xstate_size = static_cast<uint32_t>(xs.size());
    sw.extended_size = sw.xstate_size + 4;
    sw.xfeatures = xcr0;
    out->assign(xs.begin(), xs.end());
    out->resize(xs.size() + 4);
    std::memcpy(out->data() + kSwReservedOffset, &sw, sizeof sw);
    std::memcpy(out->data() + xs.size(), &kFpXstateMagic2, 4);
    return true;
}

}  // namespace

bool read_remote_thread(pid_t tid, RemoteThread *t, std::string *err) {
    if (ptrace(PTRACE_GETREGS, tid, nullptr, &t->regs) != 0) return fail(err, "cannot read its registers");
    t->xstate.assign(1 << 16, 0);
    iovec io{t->xstate.data(), t->xstate.size()};
    if (ptrace(PTRACE_GETREGSET, tid, reinterpret_cast<void *>(NT_X86_XSTATE), &io) != 0)
        return fail(err, "cannot read its vector registers");
    t->xstate.resize(io.iov_len);
    return true;
}

SyscallExit syscall_exit_of(const RemoteThread &t) {
    if (static_cast<long>(t.regs.orig_rax) < 0) return SyscallExit::kNone;
    const long rc = static_cast<long>(t.regs.rax);
    if (rc == -kErestartSys || rc == -kErestartNoIntr || rc == -kErestartNoHand ||
        rc == -kErestartRestartBlock)
        return SyscallExit::kRestarts;
    return rc == -EINTR ? SyscallExit::kEintr : SyscallExit::kReturned;
}

uint64_t remote_pc(const RemoteThread &t) {
    return t.regs.rip;
}
uint64_t remote_sp(const RemoteThread &t) {
    return t.regs.rsp;
}

uint64_t remote_fp(const RemoteThread &t) {
    return t.regs.rbp;
}

long find_sigreturn_stub(const uint8_t *code, size_t size) {
    // mov $SYS_rt_sigreturn, %rax; syscall — glibc's __restore_rt, the sa_restorer of every
    // handler it installs.
    static const uint8_t stub[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    const void *at = memmem(code, size, stub, sizeof stub);  // libc's code is megabytes
    return at ? static_cast<long>(static_cast<const uint8_t *>(at) - code) : -1;
}

bool syscall_restarts_after_stop(long nr) {
    // Not among them: epoll_wait, semop, sigtimedwait, io_getevents (EINTR after any stop).
    static constexpr long kRestarting[] = {
        SYS_read,    SYS_write,    SYS_readv,     SYS_writev,          SYS_pread64, SYS_pwrite64, SYS_preadv,
        SYS_pwritev, SYS_accept,   SYS_accept4,   SYS_recvfrom,        SYS_recvmsg, SYS_sendto,   SYS_sendmsg,
        SYS_wait4,   SYS_waitid,   SYS_nanosleep, SYS_clock_nanosleep, SYS_futex,   SYS_poll,     SYS_ppoll,
        SYS_select,  SYS_pselect6, SYS_pause,     SYS_rt_sigsuspend,   SYS_msgrcv,  SYS_msgsnd};
    return std::find(std::begin(kRestarting), std::end(kRestarting), nr) != std::end(kRestarting);
}

int socket_timeout_option(long nr) {
    switch (nr) {
        case SYS_read:
        case SYS_readv:
        case SYS_recvfrom:
        case SYS_recvmsg:
        case SYS_accept:
        case SYS_accept4:
            return SO_RCVTIMEO;
        case SYS_write:
        case SYS_writev:
        case SYS_sendto:
        case SYS_sendmsg:
            return SO_SNDTIMEO;
        default:
            return 0;
    }
}

long blocked_syscall_nr(const std::string &syscall_line) {
    if (syscall_line.empty() || !(syscall_line[0] >= '0' && syscall_line[0] <= '9')) return -1;
    return std::strtol(syscall_line.c_str(), nullptr, 10);
}

bool prepare_call_then_return(pid_t tid, int mem_fd, const RemoteThread &t, const RemoteCall &c,
                              std::string *err) {
    std::vector<uint8_t> fp;
    if (!frame_xstate(t.xstate, &fp, err)) return false;
    const user_regs_struct back = resumed_regs(t);
    // Below the red zone: the record for the agent, the string, the XSAVE area (64-byte aligned
    // for XRSTOR), the ucontext (16-byte aligned), and under it the return address, where a
    // called function finds it.
    const uint64_t top = t.regs.rsp - kRedZone;
    const uint64_t rec = (top - sizeof(attach::Record)) & ~uint64_t{15};
    const uint64_t str = (rec - c.arg0_string.size() - 1) & ~uint64_t{15};
    const uint64_t fpa = (str - fp.size()) & ~uint64_t{63};
    const uint64_t uca = (fpa - sizeof(KernelUcontext)) & ~uint64_t{15};
    const uint64_t ret = uca - 8;
    const KernelUcontext uc = make_ucontext(back, fpa, c.sigmask);
    if (c.saved_errno) {
        const attach::Record r = attach::make_record(ret, *c.saved_errno, tid);
        if (!write_remote(mem_fd, rec, &r, sizeof r, err)) return false;
    }
    if (!write_remote(mem_fd, str, c.arg0_string.c_str(), c.arg0_string.size() + 1, err) ||
        !write_remote(mem_fd, fpa, fp.data(), fp.size(), err) ||
        !write_remote(mem_fd, uca, &uc, sizeof uc, err) ||
        !write_remote(mem_fd, ret, &c.sigreturn_stub, sizeof c.sigreturn_stub, err))
        return false;
    user_regs_struct r = t.regs;
    r.rip = c.fn;
    r.rsp = ret;
    r.rdi = str;
    r.rsi = c.arg1;
    r.rax = 0;
    r.orig_rax = static_cast<unsigned long long>(-1);  // no restart of a call the stop interrupted
    r.eflags &= ~uint64_t{0x400 | 0x100};              // DF and TF clear, as at a function call
    if (ptrace(PTRACE_SETREGS, tid, nullptr, &r) != 0) return fail(err, "cannot set its registers");
    return true;
}

long errno_tpoff_slot(const uint8_t *code, size_t size) {
    // glibc's __errno_location: [endbr64] mov GOT(%rip),%rax; add %fs:0,%rax; ret. The GOT slot
    // holds errno's offset from the thread pointer (R_X86_64_TPOFF64).
    static const uint8_t add_fs[] = {0x64, 0x48, 0x03, 0x04, 0x25, 0, 0, 0, 0, 0xc3};
    size_t at = size >= 4 && code[0] == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa ? 4 : 0;
    if (size < at + 7 + sizeof add_fs || code[at] != 0x48 || code[at + 1] != 0x8b || code[at + 2] != 0x05 ||
        std::memcmp(code + at + 7, add_fs, sizeof add_fs) != 0)
        return -1;
    int32_t disp;
    std::memcpy(&disp, code + at + 3, 4);
    return static_cast<long>(at) + 7 + disp;
}

uint64_t thread_pointer(const RemoteThread &t) {
    return t.regs.fs_base;
}

}  // namespace graft::arch
