// Putting the agent into a process that `graft run` did not start (docs/design.md, "Attach").
#pragma once
#include <sys/types.h>

#include <string>

namespace graft::cli {

struct AttachReport {
    bool already = false;      // the agent answered before anything was done
    pid_t borrowed_tid = 0;    // the thread that loaded the agent
    std::string borrowed_how;  // "running" or the system call it was blocked in
    double held_us = 0;        // how long that thread was stopped (from its stop to PTRACE_DETACH)
    double stop_wait_us = 0;   // from PTRACE_SEIZE to its stop (it ran, or waited for a CPU)
    double total_ms = 0;       // from the first check to the agent's first answer
    double detour_ms = 0;      // from PTRACE_DETACH until the agent listened: the borrowed thread's
                               // time in dlopen (the agent's constructor ends by listening)
    int threads_tried = 0;     // threads stopped and let go unchanged before one could be used
    // Where total_ms went, in order (detour_ms comes between borrow_ms and ready_ms):
    double checks_ms = 0;  // the process's status, executable and maps; the agent not there
    double libc_ms = 0;    // reading its C library (dlopen, the signal-return stub, errno)
    double stack_ms = 0;   // the agent's path for it; the stack walker's CFI of its objects
    double borrow_ms = 0;  // finding a thread that may be borrowed, and the borrowing
    double ready_ms = 0;   // from the agent's listening to its first answer (its worker's start-up)
};

// Loads the agent into `pid` and waits until it answers (once the checks pass, says so on stderr:
// `graft: PID: attaching the agent`); dies with `graft: attach PID: <why>` (the process
// untouched) if it cannot. A process whose agent answers is left alone (`already`).
AttachReport attach_agent(pid_t pid);

}  // namespace graft::cli
