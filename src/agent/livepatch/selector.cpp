// The selector: klp_ftrace_handler() for one thread entering a function whose entry is routed
// through graft's trampoline (src/arch/x86_64/trampoline.S).
//
// Two copies of one rule. The trampoline's hand-written fast path (assembly, because a C call
// there costs the saving of every argument register and a call: see docs/performance.md) runs
// it for a thread that owns a slot and is not already inside the selector: that is every call
// of a running program but a thread's first and a signal handler's nested ones. This file is
// the rest: those calls, and the slow path (a pending thread checking its own stack). Both
// copies read the same fields in the same order; selector_layout.h pins the offsets the
// assembly uses, checked below.
//
// Built with -mno-sse -mno-mmx (general registers; x87 is never used) and no sanitizer instrumentation: the
// fast path must leave every vector register alone (they may hold the patched function's arguments) and must
// not allocate, lock, log or fail. It lives in its own section so stack checks can recognise a thread stopped
// inside it (such a thread has chosen a version but not entered it yet: "unreliable").
#include <cstddef>
#include <cstdint>

#include "agent/livepatch/patch.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/threads/thread_state.hpp"
#include "arch/arch.hpp"

#define GRAFT_SELECT_TEXT __attribute__((section("graft_select_text"), noinline))

namespace graft {

static_assert(offsetof(ThreadSlot, seq) == GRAFT_SLOT_SEQ);
static_assert(offsetof(ThreadSlot, nest) == GRAFT_SLOT_NEST);
static_assert(offsetof(ThreadSlot, word) == GRAFT_SLOT_WORD);
static_assert(offsetof(ThreadSlot, approved) == GRAFT_SLOT_APPROVED);
static_assert(offsetof(ThreadSlot, busy_ra_slot) == GRAFT_SLOT_BUSY_RA);
static_assert(offsetof(ThreadSlot, check_countdown) == GRAFT_SLOT_COUNTDOWN);
static_assert(offsetof(ThreadSlot, slow_forced) == GRAFT_SLOT_SLOW_FORCED);
static_assert(offsetof(TransitionView, gen) == GRAFT_VIEW_GEN);
static_assert(offsetof(TransitionView, initial_state) == GRAFT_VIEW_INITIAL);
static_assert(offsetof(TransitionView, target_state) == GRAFT_VIEW_TARGET);
static_assert(offsetof(TransitionView, epoch) == GRAFT_VIEW_EPOCH);
static_assert(kIdle == -1 && kUnpatched == 0 && kPatched == 1, "trampoline.S compares states with these");
static_assert(sizeof(std::atomic<uint32_t>) == 4 && sizeof(std::atomic<uint64_t>) == 8 &&
              sizeof(std::atomic<bool>) == 1 && sizeof(std::atomic<Func *>) == 8);
// Func and FuncStack hold strings, so offsetof is only conditionally supported for them; gcc
// and clang compute it as for any class without virtual bases.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
static_assert(offsetof(FuncStack, top) == GRAFT_STACK_TOP);
static_assert(offsetof(FuncStack, entry) + offsetof(arch::EntryLayout, body) == GRAFT_STACK_BODY);
static_assert(offsetof(FuncStack, stub) == GRAFT_STACK_STUB && sizeof(FuncStack::stub) == 4);
static_assert(offsetof(Func, new_func) == GRAFT_FUNC_NEW);
static_assert(offsetof(Func, below) == GRAFT_FUNC_BELOW);
static_assert(offsetof(Func, transition) == GRAFT_FUNC_TRANSITION);
static_assert(offsetof(Func, nop) == GRAFT_FUNC_NOP);
#pragma GCC diagnostic pop

namespace {

// ~0.3-0.5 ms on current CPUs: bounds the unwinding a busy pending thread does to a few percent
// (a self-check costs microseconds); the busy_ra_slot rule below catches the moment it is free.
constexpr uint64_t kSelfCheckCycles = 1000000;
// Longest countdown between two reads of the cycle counter by a pending thread.
constexpr uint16_t kMaxCheckPeriod = 1u << 15;

// Returns the address to run, or 0 when the slow path must run first.
GRAFT_SELECT_TEXT inline uintptr_t select(uint32_t idx, bool allow_slow, uintptr_t ra_slot) {
    FuncStack *fs = __atomic_load_n(&graft_stub_table[idx], __ATOMIC_ACQUIRE);
    ThreadSlot *s = self_slot_if_any();
    if (!s) return allow_slow ? 0 : reinterpret_cast<uintptr_t>(nullptr);
    const uint32_t outer = s->nest == 0;
    read_lock(s);
    uintptr_t target = fs->entry.body;
    // A pending thread's chance to switch: here, at the entry of a function routed through the
    // selector, it holds no frame of this function yet (the userspace twin of the kernel's
    // switch at kernel exit). This runs whether or not this function's top is in transition:
    // a thread spinning on a function another patch covers must switch too.
    const int goal = g_view.target_state.load(std::memory_order_acquire);
    int state = kIdle;
    if (goal != kIdle) {
        state = effective_state(s);
        if (state != goal && outer) {
            // An approval from the worker (transition.cpp) names the seq this thread had when
            // its stack was seen clean; it holds if no section began since then. The target is
            // loaded before the epoch: see reverse_transition().
            uint32_t epoch = g_view.epoch.load(std::memory_order_acquire);
            uint32_t entry_seq = s->seq.load(std::memory_order_relaxed) - 1;
            uint64_t ap = s->approved.load(std::memory_order_acquire);
            if (ap == make_approval(epoch, entry_seq)) {
                set_own_state(s, goal);
                state = goal;
            } else if (allow_slow && (ra_slot >= s->busy_ra_slot || s->check_countdown-- == 0)) {
                s->slow_forced = ra_slot >= s->busy_ra_slot;
                read_unlock(s);
                return 0;
            }
        }
    }
    Func *f = fs->top.load(std::memory_order_acquire);
    if (f) {
        // Acquire pairs with the release store of `transition` in transition.cpp (the kernel's
        // smp_rmb after reading the stack top: func_stack before func->transition).
        if (f->transition.load(std::memory_order_acquire)) {
            if (goal == kIdle) state = effective_state(s);
            if (state == kUnpatched) f = f->below.load(std::memory_order_acquire);
        }
        if (f && !f->nop) target = reinterpret_cast<uintptr_t>(f->new_func);
    }
    read_unlock(s);
    return target;
}

}  // namespace

extern "C" GRAFT_SELECT_TEXT uintptr_t graft_select_fast(uint32_t idx, uintptr_t ra_slot) {
    return select(idx, true, ra_slot);
}

// `ra_slot` and `bp`: the patched function's return-address slot and %rbp at its entry
// (trampoline.S), for the self-check.
extern "C" GRAFT_SELECT_TEXT uintptr_t graft_select_slow(uint32_t idx, uintptr_t ra_slot, uintptr_t bp) {
    ThreadSlot *s = self_slot();  // first call on this thread: claim (async-signal-safe)
    if (s && s->nest == 0) {
        // Here because the busy function returned (check now), or the countdown ran out: check
        // if kSelfCheckCycles passed, and fit the countdown to this thread's rate of calls so
        // that the next one runs out about when the next check is due.
        const uint64_t now = arch::cycles();
        const uint64_t since = now - s->last_self_check;
        const bool due = s->slow_forced || since >= kSelfCheckCycles;
        if (!s->slow_forced) {
            if (since < kSelfCheckCycles && s->check_period < kMaxCheckPeriod)
                s->check_period = static_cast<uint16_t>(s->check_period * 2);
            else if (since >= 2 * kSelfCheckCycles && s->check_period > 1)
                s->check_period /= 2;
        }
        s->slow_forced = 0;
        s->check_countdown = s->check_period;
        if (due) {
            const uint64_t start = hold_now_ns();
            try_switch_self_from_selector(ra_slot, bp);
            hold_record(HoldKind::kSelfCheck, start);
            s->last_self_check = arch::cycles();
        }
    }
    uintptr_t t = select(idx, false, 0);
    if (t) return t;
    // No slot could be claimed: run what a thread in the initial state runs.
    FuncStack *fs = __atomic_load_n(&graft_stub_table[idx], __ATOMIC_ACQUIRE);
    Func *f = fs->top.load(std::memory_order_acquire);
    if (f && f->transition.load(std::memory_order_acquire) &&
        g_view.initial_state.load(std::memory_order_acquire) == kUnpatched)
        f = f->below.load(std::memory_order_acquire);
    return f && !f->nop ? reinterpret_cast<uintptr_t>(f->new_func) : fs->entry.body;
}

}  // namespace graft
