// The transition's decision about one thread in one pass (klp_try_switch_task), as pure functions
// of what the pass read of it: no /proc, no globals, so that recorded inputs replay in unit tests
// (tests/unit/thread_verdict_test.cpp). transition.cpp reads, these decide, transition.cpp acts.
#pragma once
#include <sys/types.h>
#include <chrono>
#include <cstdint>
#include <string>

#include "agent/unwind/stack_check.hpp"

namespace graft {

// ---- a thread seen running ----
// A thread seen running in several passes in a row, that never blocked in between and was on a
// CPU for part of that time, is CPU-bound: it is not in a system call, so a signal interrupts no
// sleep and it may be signalled before the signal timeout (docs/design.md, "Running threads").
// A thread that sleeps and wakes shows new voluntary context switches, and one that only waited
// for a CPU shows no CPU time: both are left alone and checked while they sleep. The figures and
// the measurements behind them: docs/performance.md, §2 (transition time with spinning threads).
constexpr int kCpuBoundMinPasses = 3;
// The streak must be this long...
constexpr std::chrono::nanoseconds kCpuBoundMinStreak = std::chrono::milliseconds(20);
// ...and the thread must have run this much of it: a scheduler tick, the kernel's unit of CPU
// accounting. No share of the wall time is required: a CPU-bound thread on a loaded machine
// gets a fraction of a CPU.
constexpr std::chrono::nanoseconds kCpuBoundMinRun = std::chrono::milliseconds(4);

struct RunningStreak {
    int passes = 0;
    unsigned long long voluntary_at_start = 0;
    unsigned long long cpu_ns_at_start = 0;
    std::chrono::steady_clock::time_point start;
};

// What one pass read of a running thread (status, schedstat).
struct RunningSample {
    unsigned long long voluntary = 0;
    bool have_cpu = false;  // schedstat readable
    unsigned long long cpu_ns = 0;
    std::chrono::steady_clock::time_point now;
};

// Adds one pass to the streak; true if the thread now counts as CPU-bound.
bool extend_running_streak(RunningStreak *streak, const RunningSample &sample);

// ---- any thread not yet switched ----
struct ThreadFacts {
    int read_err = 0;       // of its syscall file (0: read)
    bool status_ok = true;  // its status file read, where it was needed
    bool sleeping = false;  // in the kernel (syscall file not "running")
    bool sig_blocked = false;
    bool has_state = false;  // has a per-thread slot
    bool signal_round = false;
    bool cpu_bound = false;  // running: extend_running_streak() said so
    // Sleeping with a slot: where it stands, whether it was not scheduled in during the check,
    // and its selector sequence while frozen (odd: inside the selector).
    StackResult stack;
    bool stable = false;
    uint32_t seq = 0;
};

struct ThreadVerdict {
    enum Kind { kGone, kPending, kApprove } kind = kPending;
    bool signal = false;  // send it the transition signal in this pass
    std::string reason;   // as `graft threads` shows it
};

ThreadVerdict judge_thread(pid_t tid, const ThreadFacts &facts);

}  // namespace graft
