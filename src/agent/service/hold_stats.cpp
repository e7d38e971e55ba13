#include "agent/service/hold_stats.hpp"

#include <time.h>

#include <atomic>

namespace graft {
namespace {

// Counters only: nothing is published with them, so every access is relaxed. A reader may see
// a count without its time yet (or the reverse); status figures are approximate by that much.
struct Counters {
    std::atomic<uint64_t> count{0}, total_ns{0}, max_ns{0};
    std::atomic<uint64_t> buckets[kHoldBuckets] = {};
};
Counters g_holds[static_cast<int>(HoldKind::kCount)];

}  // namespace

uint64_t hold_now_ns() {
    timespec ts{};
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) return 0;
    return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void hold_record(HoldKind kind, uint64_t start_ns) {
    const uint64_t now = hold_now_ns();
    if (start_ns == 0 || now < start_ns) return;
    const uint64_t d = now - start_ns;
    Counters &c = g_holds[static_cast<int>(kind)];
    c.count.fetch_add(1, std::memory_order_relaxed);
    c.total_ns.fetch_add(d, std::memory_order_relaxed);
    int b = 0;
    while (b < kHoldBuckets - 1 && d >= uint64_t{kHoldBucketsUs[b]} * 1000) b++;
    c.buckets[b].fetch_add(1, std::memory_order_relaxed);
    uint64_t m = c.max_ns.load(std::memory_order_relaxed);
    while (d > m && !c.max_ns.compare_exchange_weak(m, d, std::memory_order_relaxed)) {
    }
}

HoldSummary hold_summary(HoldKind kind) {
    const Counters &c = g_holds[static_cast<int>(kind)];
    HoldSummary h;
    h.count = c.count.load(std::memory_order_relaxed);
    h.total_ns = c.total_ns.load(std::memory_order_relaxed);
    h.max_ns = c.max_ns.load(std::memory_order_relaxed);
    for (int b = 0; b < kHoldBuckets; b++) h.buckets[b] = c.buckets[b].load(std::memory_order_relaxed);
    return h;
}

}  // namespace graft
