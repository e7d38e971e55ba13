#include "agent/unwind/frame_rules.hpp"

#include <elfutils/libdw.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <vector>

#include "agent/process/object_events.hpp"
#include "agent/threads/thread_state.hpp"

struct graft::FrameRuleSnapshot {
    struct Row {
        uintptr_t lo, hi;
        FrameRule rule;
    };
    size_t count;
    Row rows[];  // sorted by lo, disjoint
};

namespace graft {
namespace {

using Row = FrameRuleSnapshot::Row;

constexpr size_t kMaxRows = 1u << 16;
constexpr size_t kMaxRowsPerFunction = 512;

// The array handlers read. Stored by the worker with release (publish, forget) after the rows
// are written; loaded with acquire by frame_rules_current() in the handler. Freed only after
// synchronize_threads(): handlers read it inside a read-side section.
std::atomic<FrameRuleSnapshot *> g_current{nullptr};
// Rows waiting for the next publish (core mutex).
auto &g_pending = *new std::vector<Row>;

// Frames a handler found no row for. A cell is free (0), being written (1) or full (2): a
// handler claims a free one with a compare-and-swap, fills it and marks it full with a release
// store (pairs with the acquire load in frame_rules_take_misses, which frees it with a release
// store after reading, paired with the claim). A full ring drops the miss (a later signal
// misses again). The fields are atomics only because the duplicate check reads them unordered.
constexpr size_t kMissCells = 64;
struct MissCell {
    std::atomic<uint32_t> state{0};
    std::atomic<uintptr_t> pc{0}, sp{0}, bp{0};
    std::atomic<bool> bp_known{false};
};
MissCell g_misses[kMissCells];

FrameRuleSnapshot *make_snapshot(const std::vector<Row> &rows) {
    auto *s =
        static_cast<FrameRuleSnapshot *>(std::malloc(sizeof(FrameRuleSnapshot) + rows.size() * sizeof(Row)));
    if (!s) return nullptr;
    s->count = rows.size();
    std::copy(rows.begin(), rows.end(), s->rows);
    return s;
}

void replace_snapshot(FrameRuleSnapshot *next) {
    FrameRuleSnapshot *old = g_current.exchange(next, std::memory_order_acq_rel);
    if (old) {
        synchronize_threads();  // no handler still walks with the old rows
        std::free(old);
    }
}

}  // namespace

void frame_rules_note(uintptr_t lo, uintptr_t hi, FrameRule rule) {
    if (lo < hi && g_pending.size() < kMaxRows) g_pending.push_back({lo, hi, rule});
}

void frame_rules_note_function(Dwfl *dwfl, uintptr_t pc) {
    uintptr_t lo = 0, hi = 0;
    FrameRule r = frame_rule_compute(dwfl, pc, &lo, &hi);
    if (lo >= hi) {
        // No CFI here: a one-byte kOther row, so that handlers stop reporting it.
        frame_rules_note(pc, pc + 1, FrameRule{});
        return;
    }
    frame_rules_note(pc, hi, r);
    // The rest of the function, row after row: the next signal may land anywhere in it. The
    // walk starts where the function's first row starts (so that each `a` below is where a row
    // begins) and takes each row's end from libdw, which is exact (see frame_rule_compute).
    Dwfl_Module *m = dwfl_addrmodule(dwfl, pc);
    GElf_Off off = 0;
    GElf_Sym sym{};
    if (!m || !dwfl_module_addrinfo(m, pc, &off, &sym, nullptr, nullptr, nullptr) || sym.st_size == 0) return;
    const uintptr_t fn_lo = pc - off, fn_hi = fn_lo + sym.st_size;
    uintptr_t rlo = 0, rhi = 0;
    (void)frame_rule_compute(dwfl, fn_lo, &rlo, &rhi);
    if (rlo != fn_lo) return;  // the symbol does not start a CFI entry: no known row start
    size_t rows = 0;
    for (uintptr_t a = fn_lo; a < fn_hi && g_pending.size() < kMaxRows && rows < kMaxRowsPerFunction;
         rows++) {
        FrameRule rr = frame_rule_compute(dwfl, a, &rlo, &rhi);
        if (rlo >= rhi || rhi <= a) break;
        frame_rules_note(a, rhi, rr);
        a = rhi;
    }
}

size_t frame_rules_take_misses(FrameMiss *out, size_t max) {
    size_t n = 0;
    for (auto &c : g_misses) {
        if (n == max) break;
        if (c.state.load(std::memory_order_acquire) != 2) continue;
        out[n++] = {c.pc.load(std::memory_order_relaxed), c.sp.load(std::memory_order_relaxed),
                    c.bp.load(std::memory_order_relaxed), c.bp_known.load(std::memory_order_relaxed)};
        c.pc.store(0, std::memory_order_relaxed);
        c.state.store(0, std::memory_order_release);
    }
    return n;
}

void frame_rules_publish() {
    if (g_pending.empty()) return;
    if (!objects_watched()) {
        g_pending.clear();
        return;
    }
    std::vector<Row> rows;
    const FrameRuleSnapshot *cur = g_current.load(std::memory_order_relaxed);
    if (cur) rows.assign(cur->rows, cur->rows + cur->count);
    const size_t old_count = rows.size();
    rows.insert(rows.end(), g_pending.begin(), g_pending.end());
    g_pending.clear();
    // Rows are exact pieces of CFI rows, so two that overlap are pieces of the same row: keep
    // the first and the part of the second past its end.
    std::stable_sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.lo < b.lo; });
    std::vector<Row> out;
    out.reserve(rows.size());
    for (Row r : rows) {
        if (!out.empty() && r.lo < out.back().hi) {
            if (r.hi <= out.back().hi) continue;
            r.lo = out.back().hi;
        }
        if (out.size() == kMaxRows) break;
        out.push_back(r);
    }
    if (out.size() == old_count) return;  // nothing new
    if (FrameRuleSnapshot *s = make_snapshot(out)) replace_snapshot(s);
}

void frame_rules_forget(uintptr_t lo, uintptr_t hi) {
    std::erase_if(g_pending, [&](const Row &r) { return r.lo < hi && r.hi > lo; });
    const FrameRuleSnapshot *cur = g_current.load(std::memory_order_relaxed);
    if (!cur) return;
    std::vector<Row> keep;
    for (size_t i = 0; i < cur->count; i++)
        if (!(cur->rows[i].lo < hi && cur->rows[i].hi > lo)) keep.push_back(cur->rows[i]);
    if (keep.size() == cur->count) return;
    // Out of memory: publish nothing rather than keep rows of code about to go away.
    replace_snapshot(keep.empty() ? nullptr : make_snapshot(keep));
}

bool frame_rules_known(uintptr_t pc) {
    FrameRule unused;
    if (frame_rules_lookup(g_current.load(std::memory_order_relaxed), pc, &unused)) return true;
    for (const Row &r : g_pending)
        if (pc >= r.lo && pc < r.hi) return true;
    return false;
}

const FrameRuleSnapshot *frame_rules_current() {
    return g_current.load(std::memory_order_acquire);  // pairs with replace_snapshot()
}

bool frame_rules_lookup(const FrameRuleSnapshot *s, uintptr_t pc, FrameRule *out) {
    if (!s) return false;
    size_t lo = 0, hi = s->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->rows[mid].lo <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || pc >= s->rows[lo - 1].hi) return false;
    *out = s->rows[lo - 1].rule;
    return true;
}

void frame_rules_record_miss(const FrameMiss &m) {
    if (m.pc == 0) return;
    for (auto &c : g_misses)
        if (c.pc.load(std::memory_order_relaxed) == m.pc &&
            (m.sp == 0 || c.sp.load(std::memory_order_relaxed) != 0))
            return;  // already queued, with as much as this miss knows
    for (auto &c : g_misses) {
        uint32_t expected = 0;
        // Acquire: pairs with the release store that freed the cell in frame_rules_take_misses.
        if (!c.state.compare_exchange_strong(expected, 1, std::memory_order_acquire,
                                             std::memory_order_relaxed))
            continue;
        c.pc.store(m.pc, std::memory_order_relaxed);
        c.sp.store(m.sp, std::memory_order_relaxed);
        c.bp.store(m.bp, std::memory_order_relaxed);
        c.bp_known.store(m.bp_known, std::memory_order_relaxed);
        c.state.store(2, std::memory_order_release);  // pairs with frame_rules_take_misses
        return;
    }
}

size_t frame_rules_count() {
    const FrameRuleSnapshot *s = g_current.load(std::memory_order_acquire);
    return s ? s->count : 0;
}

}  // namespace graft
