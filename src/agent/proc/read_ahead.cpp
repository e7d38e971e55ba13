#include "agent/proc/read_ahead.hpp"

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace graft {
namespace {

void futex_wait(std::atomic<uint32_t> *word, uint32_t seen, long timeout_ns) {
    timespec ts{0, timeout_ns};
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAIT_PRIVATE, seen, &ts, nullptr, 0);
}

void futex_wake(std::atomic<uint32_t> *word) {
    syscall(SYS_futex, reinterpret_cast<uint32_t *>(word), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

}  // namespace

ReadAhead::ReadAhead(size_t n, ReadFn fn, void *ctx, size_t min_items, size_t window)
    : n_(n), fn_(fn), ctx_(ctx), window_(window ? window : 1), state_(new std::atomic<uint8_t>[n ? n : 1]) {
    for (size_t i = 0; i < n_; i++) state_[i].store(0, std::memory_order_relaxed);
    if (min_items == 0 || n_ < min_items || n_ > UINT32_MAX) return;
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0) return;
    // The helper only opens and reads small files; the default 8 MiB stack would be mapped (and
    // the mmap lock taken) for nothing. Its signal mask is the worker's: everything blocked.
    pthread_attr_setstacksize(&attr, 256 * 1024);
    helper_started_ = pthread_create(&helper_, &attr, helper_main, this) == 0;
    pthread_attr_destroy(&attr);
    if (helper_started_) pthread_setname_np(helper_, "graft-readahead");
}

void ReadAhead::finish() {
    if (!helper_started_ || joined_) return;
    stop_.store(true, std::memory_order_seq_cst);
    if (helper_sleeping_.load(std::memory_order_seq_cst)) futex_wake(&waited_);
    pthread_join(helper_, nullptr);
    joined_ = true;
}

bool ReadAhead::read_if_free(size_t i) {
    uint8_t free_state = 0;
    if (!state_[i].compare_exchange_strong(free_state, 1, std::memory_order_acquire)) return false;
    fn_(i, ctx_);
    // Pairs with the acquire load in wait(): what fn_ wrote is visible to the worker.
    state_[i].store(2, std::memory_order_release);
    return true;
}

void ReadAhead::wait(size_t i) {
    if (i >= n_) return;
    if (helper_started_) {
        // Pairs with the helper's store of helper_sleeping_ in helper_loop() (seq_cst both).
        waited_.store(static_cast<uint32_t>(i), std::memory_order_seq_cst);
        if (helper_sleeping_.load(std::memory_order_seq_cst)) futex_wake(&waited_);
    }
    if (read_if_free(i)) return;
    // The helper is reading it now (a few µs of /proc reads): rather than wait, read a later
    // item the helper has not reached, within the same window; the two threads then share the
    // reads however their speeds compare.
    size_t next = i + 1;
    while (state_[i].load(std::memory_order_acquire) != 2) {
        while (next < n_ && next < i + window_ && state_[next].load(std::memory_order_relaxed) != 0) next++;
        if (next < n_ && next < i + window_ && read_if_free(next)) continue;
        sched_yield();
    }
}

void *ReadAhead::helper_main(void *self) {
    static_cast<ReadAhead *>(self)->helper_loop();
    return nullptr;
}

void ReadAhead::helper_loop() {
    for (size_t j = 0; j < n_; j++) {
        for (;;) {
            if (stop_.load(std::memory_order_relaxed)) return;
            if (j < waited_.load(std::memory_order_seq_cst) + window_) break;
            // Pairs with wait(): either it sees this store and wakes us, or we see its new
            // waited_ below and do not sleep.
            helper_sleeping_.store(1, std::memory_order_seq_cst);
            const uint32_t w = waited_.load(std::memory_order_seq_cst);
            if (j >= w + window_ && !stop_.load(std::memory_order_seq_cst))
                futex_wait(&waited_, w, 5'000'000);
            helper_sleeping_.store(0, std::memory_order_relaxed);
        }
        if (read_if_free(j)) by_helper_.fetch_add(1, std::memory_order_relaxed);
    }
}

}  // namespace graft
