// Hold statistics: how long graft's own code keeps a host thread from its work while it
// switches that thread, measured on the thread itself around the two places where graft runs
// more than a few instructions on it: the transition signal's handler and the selector's slow
// path when it checks the thread's own stack. `graft status --json` reports them ("holds") so
// that a user, and bench/, can see the cost per thread directly rather than infer it from the
// thread's lost CPU time (the kernel's signal delivery and return are outside both figures).
#pragma once
#include <cstdint>

namespace graft {

enum class HoldKind : uint8_t { kSignal, kSelfCheck, kCount };

// Async-signal-safe (CLOCK_MONOTONIC from the vDSO); never fails: 0 if the clock does.
uint64_t hold_now_ns();
// Async-signal-safe, lock-free: counts one hold of `kind` that began at `start_ns`.
void hold_record(HoldKind kind, uint64_t start_ns);

// Upper edges of the histogram's buckets, µs (the last bucket has none).
inline constexpr uint32_t kHoldBucketsUs[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
inline constexpr int kHoldBuckets = sizeof kHoldBucketsUs / sizeof kHoldBucketsUs[0] + 1;

struct HoldSummary {
    uint64_t count = 0, total_ns = 0, max_ns = 0;
    uint64_t buckets[kHoldBuckets] =
        {};  // holds shorter than kHoldBucketsUs[i] (and longer than the one before)
};
HoldSummary hold_summary(HoldKind kind);

}  // namespace graft
