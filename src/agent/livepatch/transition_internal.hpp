// The transition's state shared by its two files: transition.cpp (the transition's life:
// init, start, reverse, force, complete, the threads' own switch) and transition_pass.cpp (one
// pass of try_complete_transition over the threads). Nothing else includes this header.
// Everything here is the worker's, under the core mutex, except g_forbidden (see below).
#pragma once
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "agent/livepatch/thread_verdict.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {

using TransitionClock = std::chrono::steady_clock;

// The forbidden ranges of the transition in progress, built for the current target. Published
// (release) by start_transition()/reverse_transition(); read (acquire) inside read-side sections
// by transition_self_check(); a replaced table is freed only after synchronize_threads(). A
// reverse withdraws it before the target flips (reverse_transition()).
extern std::atomic<ForbiddenTable *> g_forbidden;
// When pending threads are signalled next.
extern TransitionClock::time_point g_next_signal;
// What the last pass found, thread by thread (thread_reports()).
extern std::vector<ThreadReport> &g_reports;
// Threads seen running in the passes so far (thread_verdict.hpp), by tid.
extern std::map<pid_t, RunningStreak> &g_streaks;
// Threads to look at in one pass from which their first reads are done ahead on a helper thread
// (read_ahead.hpp); 0: never. GRAFT_READ_AHEAD sets it (set_read_ahead_min) before the worker
// starts; the worker alone reads it afterwards.
extern size_t g_read_ahead_min;
extern ReadAheadStats g_read_ahead_stats;  // written in a pass, read by read_ahead_stats()

// The slots claimed by live tids.
std::map<pid_t, ThreadSlot *> slot_map();
// An approval given to the owner of `s` in this epoch, for a seq it still has.
bool approval_holds(ThreadSlot *s, uint32_t epoch);
// `from` plus the signal timeout.
TransitionClock::time_point after_signal_timeout(TransitionClock::time_point from);
// The next pass: in 1 ms after a change (reset), else backing off to 100 ms.
void schedule_retry(bool reset);

}  // namespace graft
