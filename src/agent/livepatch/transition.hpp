// The per-thread consistency model (kernel/livepatch/transition.c).
//
// One patch at a time is in transition towards a target state. Every thread starts in the
// initial state (!target) and switches when a reliable check of its stack finds none of the
// forbidden functions (klp_check_stack_func). Threads switch:
//  - themselves, in the selector's slow path, in graft_quiescent() and in the transition signal
//    handler (sent only to threads that are running, or after the signal timeout);
//  - by approval: the worker checks a thread blocked in a system call where it stands (without
//    waking it) and leaves an approval the thread consumes on its next selector entry; the
//    approval holds only if the thread entered no patched function since (seq unchanged).
// All functions here except transition_self_check() run on the worker with the core mutex held.
#pragma once
#include <sys/types.h>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/unwind/stack_check.hpp"

namespace graft {

struct Patch;

extern Patch *g_transition_patch;  // klp_transition_patch

void init_transition(Patch *patch, int state);
bool start_transition(std::string *why);  // routes the functions, flags threads
void try_complete_transition();           // klp_try_complete_transition
// Undoes init_transition() when start_transition() failed: nothing was routed, so no thread can
// have switched; the transition state is idle again, as before init_transition().
void abort_unstarted_transition();
void cancel_transition();  // only between init and start
void reverse_transition();
void force_transition();
void complete_transition();
// An object came or went while a patch is in transition: its forbidden set changed.
void transition_objects_changed();

struct ThreadReport {
    pid_t tid;
    std::string name;
    int state;  // -1 / 0 / 1
    bool pending;
    std::string reason;  // why still pending
};
std::vector<ThreadReport> thread_reports();
double transition_elapsed_seconds();
int pending_count();

// Seconds before pending threads get the transition signal (kernel: 15 s). False (and nothing
// changed) unless 0 <= seconds <= kMaxSignalTimeout: a NaN or negative value never reaches a
// duration conversion.
constexpr double kMaxSignalTimeout = 86400;
bool set_signal_timeout(double seconds);
// How long a thread's check of its own stack may spend in libgcc's walk (GRAFT_OWN_WALK_BUDGET_US).
void set_own_walk_budget_us(double us);
// Threads to look at in one pass from which their first /proc reads are done on a helper
// thread (read_ahead.hpp); 0: never (GRAFT_READ_AHEAD). Before the worker starts.
void set_read_ahead_min(size_t threads);
struct ReadAheadStats {
    uint64_t passes = 0;   // passes that ran the helper
    uint64_t threads = 0;  // threads whose first reads the helper did
};
// Core mutex.
ReadAheadStats read_ahead_stats();
double signal_timeout();
int transition_signal();
// Whether the transition signal still runs graft's handler (agent.cpp). A program may have reset
// it (to SIG_DFL, which would kill the process): such a thread is never signalled.
bool transition_handler_installed();

// klp_update_patch_state for the calling thread after a reliable own-stack check.
void transition_self_check(SelfContext ctx, const InterruptedRegs *regs = nullptr);
// Milliseconds until the worker should call try_complete_transition again (-1: none running).
int transition_retry_ms();

}  // namespace graft
