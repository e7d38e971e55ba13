// Read-ahead: the first reads of each thread's check in a transition pass, done on a helper
// thread while the worker walks the stacks of the threads before it.
//
// At 1000 blocked threads a pass is CPU-bound work on the worker, most of it the kernel opening
// and generating /proc files (docs/performance.md §2). Per thread the worker opens `schedstat`,
// reads it, reads `syscall`, walks the stack, and reads `schedstat` again: the first three need
// nothing from the walk of the thread before, so a second CPU can do them ahead. The walk stays
// on the worker (its caches and libdw are the worker's alone), and so does the second read of
// `schedstat`, which proves the thread did not run between its first look and the walk's end
// (a longer window than without read-ahead, so a thread that ran in it is seen "running" and
// looked at again next pass: never wrongly approved).
//
// Hand-written rather than a thread pool: the helper lives for one pass, inside the host, with
// every signal blocked and no graft thread slot work to do; it must never hold more than a
// window of descriptors open (the host's descriptor limit is the host's), and the worker must
// be able to do any item itself, so that a helper that cannot start or falls behind costs
// nothing but time.
#pragma once
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace graft {

class ReadAhead {
  public:
    // Reads item i (0 <= i < n). Called once per item, on the helper or on the worker, never
    // both; must not throw.
    using ReadFn = void (*)(size_t i, void *ctx) noexcept;

    // Starts a helper for n items if n >= min_items, min_items > 0 and the helper can be
    // created; at most `window` items are read ahead of the last one the worker waited for.
    ReadAhead(size_t n, ReadFn fn, void *ctx, size_t min_items, size_t window);
    // Stop the helper and join it: on return no item is being read. finish() may be called
    // before the destructor (which then does nothing more).
    void finish();
    ~ReadAhead() { finish(); }
    ReadAhead(const ReadAhead &) = delete;
    ReadAhead &operator=(const ReadAhead &) = delete;

    // Worker only, i increasing: on return item i was read (by the helper, or here). While the
    // helper reads item i, the worker reads later items the helper has not claimed yet.
    void wait(size_t i);

    bool helper_ran() const { return helper_started_; }
    // Items the helper read (complete once finish() ran; read by the worker only).
    size_t read_by_helper() const { return by_helper_.load(std::memory_order_relaxed); }

  private:
    static void *helper_main(void *self);
    void helper_loop();
    // 0 free, 1 being read, 2 read. The claim (0 -> 1) is a CAS on both sides, so each item is
    // read once; 2 is stored with release by whoever read it, and loaded with acquire by wait().
    bool read_if_free(size_t i);

    const size_t n_;
    const ReadFn fn_;
    void *const ctx_;
    const size_t window_;
    std::unique_ptr<std::atomic<uint8_t>[]> state_;
    // How far the worker got: the helper reads item j only while j < waited_ + window_.
    // Stored (seq_cst) by wait() before it loads helper_sleeping_; the helper stores
    // helper_sleeping_ (seq_cst) before it loads this: one of them sees the other's store, so
    // the helper never sleeps through the worker's progress (and its sleep has a timeout).
    std::atomic<uint32_t> waited_{0};
    std::atomic<uint32_t> helper_sleeping_{0};
    std::atomic<bool> stop_{false};  // set by finish(); relaxed: the join orders the rest
    std::atomic<size_t> by_helper_{0};
    pthread_t helper_{};
    bool helper_started_ = false;
    bool joined_ = false;
};

}  // namespace graft
