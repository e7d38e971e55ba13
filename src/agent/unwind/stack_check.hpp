// Reliable stack checks (klp_check_stack / klp_check_stack_func).
//
// Two unwinders, one rule: any doubt means "unreliable, try later", never "clean".
//  - check_own_stack(): the calling thread, from a signal handler, the selector's slow path or
//    graft_quiescent(). Uses libgcc's unwinder (lock-free FDE lookup through _dl_find_object,
//    no allocation), so it is usable in a signal handler; in the transition signal's handler,
//    first the rows the worker published (frame_rules.hpp), which cost a fraction of it.
//  - check_blocked_thread(): another thread, frozen in a system call, from the pc and sp the
//    kernel reports in /proc/self/task/<tid>/syscall. Uses elfutils' libdwfl with only sp and pc
//    known: a frame that needs any other register is unreliable. Worker thread only.
#pragma once
#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <string>

namespace graft {

// One address range no thread may hold on its stack while switching (kernel semantics: the
// function being replaced when patching, the patch's own function when unpatching).
struct ForbiddenRange {
    uintptr_t lo, hi;
    const char *name;  // function name, owned by the patch (lives as long as the range table)
};

struct ForbiddenTable {
    size_t count;
    ForbiddenRange ranges[];  // flexible array, allocated by transition.cpp
};

enum class StackVerdict { kClean, kBusy, kUnreliable };

struct StackResult {
    StackVerdict verdict = StackVerdict::kUnreliable;
    const char *busy_in = nullptr;  // kBusy: the function found on the stack
    const char *why = nullptr;      // kUnreliable: a short static reason
    uintptr_t busy_cfa = 0;         // kBusy from check_own_stack: the CFA of the busy frame
    bool timed_out = false;         // kUnreliable from check_own_stack: past its deadline
};

enum class SelfContext { kSignalHandler, kSelector, kDirect };

// The registers of the frame a check starts from: the frame a signal interrupted (from its
// ucontext: pc exact), or, in the selector's slow path, the caller of the patched function
// being entered (pc a return address, sp just above it, bp as at the call).
struct InterruptedRegs {
    uintptr_t pc, sp, bp;
    bool pc_is_return_address = false;
};

// Async-signal-safe. The caller is inside a read-side section (the table cannot go away).
// `regs`: for kSignalHandler, the interrupted frame (required); for kSelector, the caller's
// frame (optional). With them, the walk tries the worker's rows first (frame_rules.hpp).
// `deadline_ns` (hold_now_ns() time, 0: none): libgcc's walk, where it is needed, gives up past
// it with kUnreliable and timed_out, and the worker prepares rows for the frames it saw.
StackResult check_own_stack(SelfContext ctx, const ForbiddenTable *table,
                            const InterruptedRegs *regs = nullptr, uint64_t deadline_ns = 0);

// The first bytes of a frozen thread's stack from its sp, copied before its walk (by the
// read-ahead helper, read_ahead.hpp): the walk starts from them rather than copy them again.
struct StackPrefix {
    const unsigned char *bytes = nullptr;
    size_t len = 0;
    bool ended = false;  // the copy stopped short: the mapping ends there
};
inline constexpr size_t kStackPrefixMax = 8192;
// Any thread. Copies from sp as far as the walk's first copy would (a little past sp, to a page
// boundary; at most kStackPrefixMax) into buf.
StackPrefix copy_stack_prefix(uintptr_t sp, unsigned char *buf);

// Worker only. True and a verdict when the thread could be checked where it stands. `prefix`,
// if given, holds the stack's first bytes as copied while the thread was already frozen.
StackResult check_blocked_thread(pid_t tid, uintptr_t sp, uintptr_t pc, const ForbiddenTable *table,
                                 const StackPrefix *prefix = nullptr);

// Called once by the worker thread at start (learns the thread-root functions).
void stack_check_init_worker();
// Called when objects were unloaded (drops the unwinder's module cache).
void stack_check_invalidate();
// Called when objects were only loaded (the modules are reported again at the next check; those
// already known keep their parsed data).
void stack_check_objects_added();
void stack_check_after_fork_child();
// Worker, core mutex: compute the rows signal handlers missed and publish every row computed
// since the last call (frame_rules.hpp).
void stack_check_share_rules();

struct HandlerWalkStats {
    uint64_t cached, full;               // transition-signal walks done with the published rows / with libgcc
    uint64_t self_cached, self_full;     // the same for the selector's self-checks
    uint64_t timed_out, self_timed_out;  // libgcc walks that ran out of their time budget
    size_t rows;                         // rows published
};
HandlerWalkStats stack_check_handler_stats();

}  // namespace graft
