#include "agent/threads/thread_state.hpp"

#include <sched.h>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <mutex>
#include <new>
#include <unordered_set>
#include <vector>

#include "arch/arch.hpp"

namespace graft {

TransitionView g_view;
std::mutex g_grace_period_mutex;
__thread ThreadSlot *t_slot __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {
// The array is mapped once and never moves or shrinks: a slot pointer cached in a thread stays
// valid for the life of the process.
ThreadSlot *g_slots = nullptr;
std::atomic<uint32_t> g_high_water{0};
// Initial-exec TLS: no allocation and no lazy DTV setup, so it is safe in a signal handler and
// costs one %fs-relative load on the selector's path.
__thread pid_t t_tid __attribute__((tls_model("initial-exec"))) = 0;

ThreadSlot *slots() {
    ThreadSlot *s = __atomic_load_n(&g_slots, __ATOMIC_ACQUIRE);
    if (s) return s;
    void *m = mmap(nullptr, sizeof(ThreadSlot) * kMaxSlots, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    ThreadSlot *expected = nullptr;
    // Racing first users: one mapping wins, the loser unmaps its own.
    if (!__atomic_compare_exchange_n(&g_slots, &expected, static_cast<ThreadSlot *>(m), false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        munmap(m, sizeof(ThreadSlot) * kMaxSlots);
        return expected;
    }
    return static_cast<ThreadSlot *>(m);
}
}  // namespace

pid_t current_tid() {
    if (!t_tid) t_tid = static_cast<pid_t>(syscall(SYS_gettid));
    return t_tid;
}

ThreadSlot *slot_at(uint32_t i) {
    ThreadSlot *s = slots();
    return s ? &s[i] : nullptr;
}

uint32_t slots_high_water() {
    return g_high_water.load(std::memory_order_acquire);
}

namespace {
// Set by adopt_existing_threads() (attach), before any thread can enter the selector or the
// transition signal's handler, and by offer_slot() before its first offer; read by self_slot()
// (relaxed: the slots it then scans are published by g_high_water and each offer's tid,
// release/acquire; a thread that misses it claims its own slot, and the worker then withdraws
// the offer, transition.cpp's slot_map()).
std::atomic<bool> g_adopted{false};

// Slots claimed since the array was made (never decremented): 1 means the caller's alone.
// Incremented by claim_slot() after its CAS (release), read by adopt_existing_threads() (acquire).
std::atomic<uint32_t> g_claims{0};

// The slot the agent claimed for this thread when it attached, or offered it since (offer_slot),
// if any (a scan: once per thread). An offer is taken by CAS, against the worker's withdrawal.
ThreadSlot *adopted_slot(ThreadSlot *arr, pid_t me) {
    for (uint32_t i = 0, n = slots_high_water(); i < n; i++) {
        pid_t t = arr[i].tid.load(std::memory_order_acquire);
        if (t == me) return &arr[i];
        // Acquire on success: the offer's reset fields, published with its tid word.
        if (t == (me | kOfferBit) &&
            arr[i].tid.compare_exchange_strong(t, me, std::memory_order_acq_rel, std::memory_order_acquire))
            return &arr[i];
    }
    return nullptr;
}

// Claims a free slot for thread `me`, reset for a new owner, or offers it to `me` (offer_slot).
// The slot holds -me while it is reset: a reader never pairs the new owner with the previous
// owner's sequence or approval.
ThreadSlot *claim_slot(ThreadSlot *arr, pid_t me, bool offered = false) {
    uint32_t start = static_cast<uint32_t>(me) % kMaxSlots;
    for (uint32_t k = 0; k < kMaxSlots; k++) {
        uint32_t i = (start + k) % kMaxSlots;
        pid_t expected = 0;
        if (arr[i].tid.load(std::memory_order_relaxed) != 0) continue;
        if (!arr[i].tid.compare_exchange_strong(expected, -me, std::memory_order_acq_rel)) continue;
        ThreadSlot *s = &arr[i];
        g_claims.fetch_add(1, std::memory_order_release);
        // A previous owner may have left an approval for its own seq: move seq past it so no
        // stale approval can ever match this owner (look_at_thread() in transition.cpp gives them).
        s->seq.store((s->seq.load(std::memory_order_relaxed) | 1) + 1, std::memory_order_relaxed);
        s->approved.store(0, std::memory_order_relaxed);
        s->nest = 0;
        s->last_self_check = 0;
        s->busy_ra_slot = 0;
        s->check_countdown = 0;
        s->check_period = 1;
        s->slow_forced = 0;
        s->signalled.store(0, std::memory_order_relaxed);
        s->word.store(0, std::memory_order_relaxed);
        uint32_t hw = g_high_water.load(std::memory_order_relaxed);
        // Publishes the claimed slot to the agent's scans (pairs with slots_high_water()).
        while (hw < i + 1 && !g_high_water.compare_exchange_weak(hw, i + 1, std::memory_order_release)) {
        }
        // Release: the reset fields before any reader takes the slot as `me`'s (pairs with the
        // acquire loads of slot_map(), adopted_slot() and the approval checks).
        s->tid.store(offered ? (me | kOfferBit) : me, std::memory_order_release);
        return s;
    }
    return nullptr;
}
}  // namespace

ThreadSlot *self_slot() {
    if (t_slot) return t_slot;
    ThreadSlot *arr = slots();
    if (!arr) return nullptr;
    pid_t me = current_tid();
    // An adopted slot keeps its word, seq and approval: the worker may have approved the thread
    // while it slept, and a transition may have completed counting on that approval, so the
    // thread must consume it at its first selector entry. A thread that reuses the tid of an
    // adopted thread that died takes its slot, which is safe: a new thread has no old function
    // on its stack.
    ThreadSlot *s = g_adopted.load(std::memory_order_relaxed) ? adopted_slot(arr, me) : nullptr;
    if (!s) s = claim_slot(arr, me);
    // A signal handler that interrupted the claim and called a patched function claimed a slot
    // of its own meanwhile: the thread keeps that one (it may have switched there), one slot only.
    if (ThreadSlot *nested = t_slot) {
        if (s && s != nested) s->tid.store(0, std::memory_order_release);
        return nested;
    }
    t_slot = s;
    return s;
}

size_t adopt_existing_threads(const std::vector<pid_t> &tids) {
    ThreadSlot *arr = slots();
    if (!arr) return 0;
    size_t n = 0;
    pid_t me = current_tid();
    // The threads that hold a slot already, read once: slots are spread over the whole array by
    // tid, so a scan per thread would cost threads x array (20 ms at 1000 threads). When the
    // only slot ever claimed is the caller's (the array is new: the constructor of an attach),
    // there is nothing to read: the scan would fault in up to a megabyte of zero pages on the
    // borrowed thread (4 ms of its dlopen on a virtual machine, where a fault is dear).
    try {
        std::unordered_set<pid_t> have;
        const bool only_mine = g_claims.load(std::memory_order_acquire) == 1 && t_slot;
        for (uint32_t i = 0, hw = only_mine ? 0 : slots_high_water(); i < hw; i++)
            if (pid_t t = slot_owner(arr[i].tid.load(std::memory_order_acquire))) have.insert(t);
        for (pid_t tid : tids)
            if (tid != me && have.insert(tid).second && claim_slot(arr, tid)) n++;
    } catch (const std::bad_alloc &) {
        // Out of memory inside dlopen, on the program's thread: the slow way, which allocates nothing.
        for (pid_t tid : tids)
            if (tid != me && !adopted_slot(arr, tid) && claim_slot(arr, tid)) n++;
    }
    g_adopted.store(true, std::memory_order_relaxed);
    return n;
}

ThreadSlot *offer_slot(pid_t tid) {
    ThreadSlot *arr = slots();
    if (!arr || tid <= 0 || tid >= kOfferBit) return nullptr;
    // From now on a thread without a slot looks for one offered to it before claiming its own.
    g_adopted.store(true, std::memory_order_relaxed);
    ThreadSlot *s = claim_slot(arr, tid, /*offered=*/true);
    // A full fence: the offer is visible to every thread before the worker's next reads (the
    // check's second scheduling count). A thread that then wakes finds it; one that looked
    // before was scheduled in before that read, which shows it (the pair is the scheduler's own
    // full barrier at the switch; docs/design.md §4.10).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return s;
}

void withdraw_offer(ThreadSlot *s, pid_t tid) {
    pid_t offered = tid | kOfferBit;
    s->tid.compare_exchange_strong(offered, 0, std::memory_order_acq_rel);
}

ThreadSlot *other_slot_of(const ThreadSlot *s, pid_t tid, pid_t *word) {
    ThreadSlot *arr = slots();
    for (uint32_t i = 0, n = slots_high_water(); arr && i < n; i++) {
        const pid_t t = arr[i].tid.load(std::memory_order_acquire);
        if (&arr[i] == s || (slot_owner(t) != tid && t != -tid)) continue;
        if (word) *word = t;
        return &arr[i];
    }
    return nullptr;
}

void thread_state_after_fork_child() {
    // The child has one thread, the one that called fork(), with its parent thread's state
    // (klp_copy_process): keep its slot under its new tid, free every other one.
    t_tid = 0;
    pid_t me = current_tid();
    ThreadSlot *arr = __atomic_load_n(&g_slots, __ATOMIC_ACQUIRE);
    if (!arr) return;
    uint32_t n = g_high_water.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++) {
        if (&arr[i] == t_slot) {
            arr[i].tid.store(me, std::memory_order_relaxed);
            arr[i].nest = 0;
            arr[i].seq.store((arr[i].seq.load(std::memory_order_relaxed) | 1) + 1, std::memory_order_relaxed);
        } else {
            arr[i].tid.store(0, std::memory_order_relaxed);
        }
    }
}

void release_self_slot() {
    ThreadSlot *s = t_slot;
    if (!s || s->nest != 0) return;
    // Later destructors of this thread may still call patched functions: they claim a fresh
    // slot rather than keep one another thread may already own.
    t_slot = nullptr;
    s->tid.store(0, std::memory_order_release);
}

uint64_t make_word(uint32_t gen, int state) {
    return (static_cast<uint64_t>(gen) << 8) | static_cast<uint64_t>(state + 1);
}

void set_own_state(ThreadSlot *s, int state) {
    // Release: the stack check that justified the switch happens-before the new state is seen.
    s->word.store(make_word(g_view.gen.load(std::memory_order_acquire), state), std::memory_order_release);
}

void synchronize_threads() {
    // Grace periods may be asked for by the worker and by program threads (graft_shadow_free):
    // one at a time, each with its own snapshot. The caller's own slot is skipped: a thread
    // cannot wait for its own read-side section to end.
    std::lock_guard<std::mutex> g(g_grace_period_mutex);
    ThreadSlot *arr = slots();
    if (!arr) return;
    ThreadSlot *self = t_slot;
    // membarrier_all() makes every running thread execute a full barrier: after it, any
    // read-side section that began earlier shows an odd seq here, and any section that begins
    // later sees every store made before it (the asymmetric pair of read_lock()).
    arch::membarrier_all();
    uint32_t n = slots_high_water();
    std::vector<uint32_t> snap(n);
    for (uint32_t i = 0; i < n; i++) snap[i] = arr[i].seq.load(std::memory_order_acquire);
    for (uint32_t i = 0; i < n; i++) {
        if (!(snap[i] & 1) || &arr[i] == self) continue;
        for (int spins = 0; arr[i].seq.load(std::memory_order_acquire) == snap[i]; spins++) {
            if (arr[i].tid.load(std::memory_order_acquire) == 0) break;
            if (spins > 64) sched_yield();
        }
    }
    arch::membarrier_all();
}

namespace {
pid_t g_worker_tid = 0;
}  // namespace

void set_worker_tid(pid_t tid) {
    g_worker_tid = tid;
}
pid_t worker_tid() {
    return g_worker_tid;
}

}  // namespace graft
