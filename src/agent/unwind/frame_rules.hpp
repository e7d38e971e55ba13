// Frame rules: the unwind table a thread walks its own stack with in the transition signal's
// handler, computed by the worker and shared read-only.
//
// libgcc's unwinder finds and interprets the CFI of every frame on every walk: ~18 µs for a
// 20-frame stack in the handler, most of the time a thread is held by a signal (see
// docs/performance.md). The rows of CFI that matter are few and simple (CFA = rsp + k or
// rbp + k, return address at CFA - 8, rbp kept or saved at CFA + n), so the worker, which
// computes them anyway with libdw for the stacks of blocked threads, publishes them as a sorted
// array of address ranges. A handler walks with a binary search per frame; anything the array
// does not answer sends it back to libgcc, and the pcs it missed are handed to the worker, which
// fills in the rows of their whole functions for the next signal.
//
// A row must never outlive the code it describes: rows of an object are dropped, and readers
// waited for, before the object is unmapped (frame_rules_forget, from livepatch_object_going, which
// the dynamic linker calls before unmapping). Objects the agent cannot watch come and go
// unseen, so without the audit module no row is ever published.
#pragma once
#include <elfutils/libdwfl.h>

#include <cstddef>
#include <cstdint>

#include "agent/unwind/cfi_rule.hpp"

namespace graft {

// Worker only, core mutex: queue the row for the next publish.
void frame_rules_note(uintptr_t lo, uintptr_t hi, FrameRule rule);
// Worker only, core mutex: queue every row of the function containing `pc` (bounded).
void frame_rules_note_function(Dwfl *dwfl, uintptr_t pc);
// A frame a walk found no row for: its pc (exact, or a return address - 1) and, when the walk
// knew them, the frame's sp and rbp, from which the worker climbs the rest of that stack
// (stack_check_share_rules) to prepare the rows of every function on it at once.
struct FrameMiss {
    uintptr_t pc = 0, sp = 0, bp = 0;  // sp == 0: not known
    bool bp_known = false;
};
// Worker only, core mutex: frames handlers missed since the last call (at most `max`).
size_t frame_rules_take_misses(FrameMiss *out, size_t max);
// Worker only, core mutex: publish the queued rows (waits for a grace period before freeing
// the array it replaces). A no-op when nothing is queued or objects are not watched.
void frame_rules_publish();
// Core mutex, before the code in [lo, hi) is unmapped: drop its rows; on return no reader
// still holds them. lo == 0 && hi == UINTPTR_MAX drops everything.
void frame_rules_forget(uintptr_t lo, uintptr_t hi);

// Worker only, core mutex: the published or queued rows cover `pc`.
bool frame_rules_known(uintptr_t pc);

// Async-signal-safe; the caller is inside a read-side section. A rule for the exact pc, or
// false (no row: the miss is recorded for the worker).
struct FrameRuleSnapshot;
const FrameRuleSnapshot *frame_rules_current();
bool frame_rules_lookup(const FrameRuleSnapshot *s, uintptr_t pc, FrameRule *out);
void frame_rules_record_miss(const FrameMiss &m);
size_t frame_rules_count();  // for status (worker / core mutex)

}  // namespace graft
