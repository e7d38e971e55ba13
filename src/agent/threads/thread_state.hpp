// Per-thread patch state (the kernel's task->patch_state and TIF_PATCH_PENDING) and the
// read-side counters of graft's grace period.
//
// Every thread that runs graft code owns one slot of a fixed, never-moving array. A slot is
// claimed with a compare-and-swap, without locks or allocation, so that a thread graft never saw
// (raw clone, a signal handler's first call) can claim one from anywhere, including a signal
// handler. Threads created with pthread_create claim theirs before their start routine runs
// (thread_birth.cpp), inheriting their creator's state as klp_copy_process() does.
#pragma once
#include <sys/types.h>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace graft {

enum PatchState : int { kIdle = -1, kUnpatched = 0, kPatched = 1 };

constexpr uint32_t kMaxSlots = 1u << 16;

// A slot's tid word: 0 free; T owned by thread T; -T being set up for T (claim_slot: no lookup
// matches it until it is published, with a release store, after the reset of the other fields);
// T | kOfferBit offered to T by the worker (offer_slot) and not taken yet. Thread ids are below
// 2^22 (the kernel's PID_MAX_LIMIT). An offer is taken by the thread (CAS to T) or withdrawn by
// the worker (CAS to 0) on this one word, so exactly one of the two happens, and an offer
// withdrawn and made again can never be taken as the old one.
constexpr pid_t kOfferBit = 1 << 30;
// The thread a published tid word names (0 for a free slot or one being set up).
inline pid_t slot_owner(pid_t word) {
    return word > 0 ? (word & ~kOfferBit) : 0;
}

struct alignas(64) ThreadSlot {
    // Owner (above). Written by claim (CAS), offer, take and withdraw (CAS), and by release at
    // thread exit.
    std::atomic<pid_t> tid{0};
    // Grace-period counter: odd while the owner is inside a read-side section (the selector,
    // a self-check). Written only by the owner; read by synchronize_threads() and by the
    // approval check in transition.cpp, both after membarrier_all() (the asymmetric pair).
    std::atomic<uint32_t> seq{0};
    uint32_t nest = 0;  // owner-only: read-side nesting (signal handlers nest)
    // (transition generation << 8) | (state + 1). Written by the owner (switching itself,
    // copying its creator) and read by the agent; the agent never writes another thread's word:
    // it approves a switch instead (below) or bumps the generation (force).
    std::atomic<uint64_t> word{0};
    // (epoch << 32) | seq: "your stack was clean at seq; if you have not entered the
    // selector since, you are switched". Written by the agent (transition.cpp), consumed by the
    // owner in the selector. Both sides are ordered by membarrier_all().
    std::atomic<uint64_t> approved{0};
    // Owner-only: cycle counter at this thread's last self-check from the selector. A pending
    // thread retries at most every kSelfCheckCycles (selector.cpp), however often it calls
    // patched functions, and soon after that, however rarely it calls them.
    uint64_t last_self_check = 0;
    // Owner-only: where the return address of the forbidden function found by the last busy
    // self-check was stored. A later entry whose own return-address slot is at or above it is
    // proof that function has returned: check again at once, whatever the rate limit says.
    uintptr_t busy_ra_slot = 0;
    // Set by the agent when it sent this thread the transition signal (for `graft threads`).
    std::atomic<uint32_t> signalled{0};
    // Owner-only: entries of a pending thread left before the selector next reads the cycle
    // counter (which costs more than the rest of the selector's fast path); the slow path
    // resets it to check_period, which adapts so that the counter is read about once per
    // kSelfCheckCycles of calls. Decremented below zero (wrapping) when it is time.
    uint32_t check_countdown = 0;
    uint16_t check_period = 1;
    // Owner-only: own-stack checks in a row that ran out of their time budget
    // (transition.cpp): after kMaxWalkTimeouts the next check has none, so that a stack the rows
    // can never cover still gets a verdict.
    uint8_t walk_timeouts = 0;
    // Owner-only: the fast path took the slow path because the busy function returned (below),
    // not because the countdown ran out: check at once.
    uint32_t slow_forced = 0;
};

// An approval names the transition's epoch and the thread's selector sequence when its stack
// was seen clean (ThreadSlot::approved): the one encoding, for the agent that gives it and the
// selector and thread birth that consume it.
inline uint64_t make_approval(uint32_t epoch, uint32_t seq) {
    return (static_cast<uint64_t>(epoch) << 32) | seq;
}
// From outside the thread: the approval holds while its sequence has not moved (no selector
// entry since) and it is not inside the selector.
inline bool approval_valid(uint64_t approval, uint32_t seq_now, uint32_t epoch) {
    return approval == make_approval(epoch, seq_now) && !(seq_now & 1);
}

// Global transition view read by the selector (written under the core mutex).
struct TransitionView {
    std::atomic<uint32_t> gen{1};           // bumped by init_transition and force
    std::atomic<int> initial_state{kIdle};  // state of every thread with no word for `gen`
    std::atomic<int> target_state{kIdle};   // klp_target_state
    // Bumped whenever an approval could become wrong (init, reverse, force, complete):
    // approvals name the epoch they were given in. Stored before target_state (release) by
    // reverse_transition(); the selector loads target_state (acquire) before the epoch.
    std::atomic<uint32_t> epoch{1};
};
extern TransitionView g_view;

// Initial-exec TLS: one %fs-relative load, no allocation, safe in signal handlers.
extern __thread ThreadSlot *t_slot __attribute__((tls_model("initial-exec")));

// This thread's slot, claiming one if needed. Async-signal-safe; nullptr only when every slot
// is taken (the thread then counts as unregistered: see docs/design.md).
ThreadSlot *self_slot();
// Without claiming.
inline ThreadSlot *self_slot_if_any() {
    return t_slot;
}
ThreadSlot *slot_at(uint32_t i);
uint32_t slots_high_water();
pid_t current_tid();

uint64_t make_word(uint32_t gen, int state);

// The thread's patch state as klp_ftrace_handler would read task->patch_state.
inline int effective_state(const ThreadSlot *s) {
    uint32_t gen = g_view.gen.load(std::memory_order_acquire);
    if (s) {
        uint64_t w = s->word.load(std::memory_order_acquire);
        if ((w >> 8) == gen) return static_cast<int>(w & 0xff) - 1;
    }
    return g_view.initial_state.load(std::memory_order_acquire);
}
// klp_update_patch_state() for the calling thread.
void set_own_state(ThreadSlot *s, int state);

// Read-side section (rcu_read_lock / preempt_disable analog). Never blocks, never fails.
inline void read_lock(ThreadSlot *s) {
    uint32_t n = s->nest;
    s->nest = n + 1;
    if (n == 0) s->seq.store(s->seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler-only; membarrier_all pairs
}
inline void read_unlock(ThreadSlot *s) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
    uint32_t n = s->nest - 1;
    if (n == 0) s->seq.store(s->seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    s->nest = n;
}

// Serialises grace periods (synchronize_threads); never taken by readers. Order: lock_order.hpp.
extern std::mutex g_grace_period_mutex;

// Grace period over every slot: returns once every thread that was inside a read-side section
// when it was called has left it. Called only from the agent's worker with the core mutex held.
void synchronize_threads();

// The agent's worker thread, set by it when it starts (control.cpp). Its stack never holds a
// patched function, so transitions switch it at once and never look at it. Written before the
// first request, then read by the worker itself.
void set_worker_tid(pid_t tid);
pid_t worker_tid();

// Thread birth/death (thread_birth.cpp).
void claim_for_new_thread(uint64_t creator_word);
// Attach: claims a slot for each thread that existed before the agent (their word says the
// initial state), so that the worker checks them where they stand like threads it saw born, and
// each finds its slot at its first selector entry. Called once, before the transition signal's
// handler is installed and before any patch can be loaded. Returns how many it claimed.
size_t adopt_existing_threads(const std::vector<pid_t> &tids);
void release_self_slot();
// The worker's adoption of a thread it finds blocked without a slot (born where no birth hook
// runs: a C library's own thread, a pthread_create reached through dlsym, an object loaded after
// an attach): a slot offered to `tid`, with the initial state, which the thread takes at its
// first selector entry (self_slot). nullptr if every slot is taken. Only while the thread is
// seen blocked, and the approval it gets only if it stayed blocked from before the offer until
// after its check (the thread cannot have claimed a slot of its own unseen). Worker, core mutex.
ThreadSlot *offer_slot(pid_t tid);
// Takes the offer to `tid` back unless the thread took it (a duplicate: it claimed its own).
void withdraw_offer(ThreadSlot *s, pid_t tid);
// The first slot other than `s` that names thread `tid` (owned, offered or being set up), with
// the tid word it held when looked at in *word; nullptr if there is none. Worker.
ThreadSlot *other_slot_of(const ThreadSlot *s, pid_t tid, pid_t *word = nullptr);
// In a fork() child, from the atfork handler (one thread).
void thread_state_after_fork_child();
void thread_birth_init();
// The pthread_create thread_birth.cpp's calls once it is not found by interposition (attach:
// birth_redirect.cpp gives the function the program's own lookup finds).
void set_real_thread_create(void *fn);

}  // namespace graft
