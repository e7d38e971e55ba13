// The read-ahead helper (src/agent/proc/read_ahead.hpp): every item is read exactly once, what it
// read is visible to the worker when wait() returns, and the helper never runs more than its
// window ahead of the worker (the window bounds the descriptors a transition pass holds open).
// Violations are counted, zero allowed; the ThreadSanitizer stage of .ci/run runs these too.
#include <gtest/gtest.h>
#include <sched.h>

#include <atomic>
#include <vector>

#include "agent/proc/read_ahead.hpp"

namespace {

struct Items {
    std::vector<uint64_t> value;
    std::vector<std::atomic<int>> reads;
    std::atomic<size_t> waited{0};  // the worker's progress, as the test sees it
    std::atomic<size_t> beyond_window{0};
    size_t window = 0;
    explicit Items(size_t n) : value(n), reads(n) {}
};

void read_item(size_t i, void *ctx) noexcept {
    auto *it = static_cast<Items *>(ctx);
    // The worker waits for items in order, so it has waited for at most `waited`: an item
    // read now by the helper must lie within the window of that.
    if (i >= it->waited.load() + it->window) it->beyond_window.fetch_add(1);
    it->reads[i].fetch_add(1, std::memory_order_relaxed);
    it->value[i] = i * 2654435761u + 1;  // plain write: published by the read-ahead's release
}

size_t run_items(size_t n, size_t min_items, size_t window, bool slow_worker, bool *helper_ran) {
    Items items(n);
    items.window = window;
    size_t wrong = 0;
    {
        graft::ReadAhead ra(n, read_item, &items, min_items, window);
        *helper_ran = ra.helper_ran();
        for (size_t i = 0; i < n; i++) {
            items.waited.store(i);
            ra.wait(i);
            if (items.value[i] != i * 2654435761u + 1) wrong++;
            if (slow_worker && i % 16 == 0) sched_yield();
        }
    }
    for (size_t i = 0; i < n; i++)
        if (items.reads[i].load() != 1) wrong++;
    return wrong + items.beyond_window.load();
}

}  // namespace

TEST(UnitReadAhead, EveryItemReadOnceAndSeenByTheWorker) {
    for (bool slow : {false, true}) {
        bool ran = false;
        EXPECT_EQ(run_items(20000, 1, 32, slow, &ran), 0u) << "slow worker " << slow;
        EXPECT_TRUE(ran);
    }
}

TEST(UnitReadAhead, BelowTheThresholdTheWorkerReadsEverything) {
    bool ran = true;
    EXPECT_EQ(run_items(10, 64, 32, false, &ran), 0u);
    EXPECT_FALSE(ran);
    EXPECT_EQ(run_items(100, 0, 32, false, &ran), 0u);  // 0: never
    EXPECT_FALSE(ran);
}

TEST(UnitReadAhead, AbandonedEarlyTheHelperStopsAndIsJoined) {
    // A pass that stops waiting part-way (an exception in the worker): the destructor stops the
    // helper, which may be asleep at the end of its window.
    Items items(5000);
    items.window = 8;
    {
        graft::ReadAhead ra(5000, read_item, &items, 1, 8);
        ASSERT_TRUE(ra.helper_ran());
        for (size_t i = 0; i < 100; i++) {
            items.waited.store(i);
            ra.wait(i);
        }
    }
    size_t twice = 0, read = 0;
    for (auto &r : items.reads) {
        twice += r.load() > 1;
        read += r.load() == 1;
    }
    EXPECT_EQ(twice, 0u);
    EXPECT_EQ(items.beyond_window.load(), 0u);
    EXPECT_GE(read, 100u);
    EXPECT_LE(read, 100u + 8u + 1u);
}
