// What /proc says of the process's threads (/proc/self/task/TID/{syscall,status,schedstat,comm}):
// the worker's only source for threads it does not run on. The parsers are pure functions of the
// text read, so that recorded files can be replayed in unit tests (tests/unit/task_files_test.cpp).
#pragma once
#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

namespace graft {

// A thread as /proc shows it at one instant: whether it sleeps in the kernel and where it
// stopped, its context-switch counters and whether it blocks the transition signal.
struct Frozen {
    bool sleeping = false;
    std::string syscall_line;
    unsigned long long voluntary = 0;
    unsigned long long ctx_switches = 0;  // voluntary + involuntary (from status)
    uintptr_t sp = 0, pc = 0;
    bool sig_blocked = false;
};

// /proc/self/task, open for one pass of the transition: the per-thread files are opened relative
// to it, which spares the path walk through /proc/self. Opened per pass, never kept: a fork()
// child must not read its parent's threads. Worker only.
class TaskDir {
  public:
    TaskDir();
    ~TaskDir();
    TaskDir(const TaskDir &) = delete;
    TaskDir &operator=(const TaskDir &) = delete;
};

std::vector<pid_t> list_tids();
std::string read_thread_name(pid_t tid);  // its comm; "" if it is gone

// Opens a /proc file of a thread; -1 (errno set) if it cannot, e.g. because the thread is gone.
int open_task_file(pid_t tid, const char *leaf);
// Whether an errno of the reads below means that the thread no longer exists.
inline bool thread_gone(int err) {
    return err == ENOENT || err == ESRCH;
}

// ---- pure parsers of recorded text ----
// schedstat: time on a CPU (first field) and how many times the thread was scheduled in (third
// field). A count of 0 means the kernel does not keep it (no CONFIG_SCHED_INFO): false.
bool parse_schedstat(const char *text, unsigned long long *cpu_ns, unsigned long long *slices);
// syscall: "running", or "nr a0 .. a5 sp pc" / "-1 sp pc" for a thread in the kernel. 0, or
// EPROTO for a line that says neither.
int parse_syscall(const char *text, Frozen *fz);
// status: the context-switch counters, and whether `signal` (if > 0) is in SigBlk. `text` is
// cut into lines in place.
void parse_status(char *text, int signal, Frozen *fz);

// ---- reads of a live thread ----
// 0, or an errno (thread_gone() for a thread that exited).
int read_syscall_err(pid_t tid, Frozen *fz);
bool read_status(pid_t tid, int signal, Frozen *fz);
bool read_frozen(pid_t tid, int signal, Frozen *fz);  // syscall, then status
bool read_schedstat(pid_t tid, unsigned long long *cpu_ns, unsigned long long *slices);
// The scheduling count from an open schedstat descriptor (/proc files are generated anew on each
// read from offset 0, so one descriptor can be read several times).
bool pread_timeslices(int fd, unsigned long long *slices);

}  // namespace graft
