#include "agent/service/status.hpp"

#include <unistd.h>

#include <mutex>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/process/object_events.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/threads/thread_state.hpp"
#include "agent/unwind/stack_check.hpp"

namespace graft {

namespace {
nlohmann::json patch_json(const Patch &p, int order) {
    nlohmann::json objs = nlohmann::json::array();
    for (auto &o : p.objs) {
        nlohmann::json funcs = nlohmann::json::array();
        for (auto &f : o->funcs)
            funcs.push_back(
                {{"name", f->old_name},
                 {"sympos", f->old_sympos ? f->old_sympos : 1},
                 {"patched", f->patched},
                 {"nop", f->nop},
                 // How calls reach graft: the compiler's patchable entry, or the
                 // function's own entry rewritten (design.md §2.6); null while unbound.
                 {"entry", f->stack ? nlohmann::json(f->stack->entry.ordinary ? "rewritten" : "patchable")
                                    : nlohmann::json(nullptr)},
                 // A rewritten entry whose jmp leads straight to where the function is routed
                 // (one jump), rather than through its block.
                 {"direct", f->stack && entry_jump(*f->stack) != 0}});
        objs.push_back({{"name", o->name}, {"patched", o->patched}, {"loaded", o->loaded}, {"funcs", funcs}});
    }
    return {{"name", p.name},       {"path", p.path},
            {"enabled", p.enabled}, {"transition", &p == g_transition_patch},
            {"replace", p.replace}, {"forced", p.forced},
            {"stack_order", order}, {"objects", objs}};
}
}  // namespace

nlohmann::json status_json() {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    nlohmann::json patches = nlohmann::json::array();
    int order = 1;
    for (Patch *p : core_patch_list()) patches.push_back(patch_json(*p, order++));
    nlohmann::json disabled = nlohmann::json::array();
    for (Patch *p : core_unloadable_list()) disabled.push_back(patch_json(*p, 0));
    nlohmann::json tr = nullptr;
    if (g_transition_patch) {
        nlohmann::json pend = nlohmann::json::array();
        for (auto &r : thread_reports())
            if (r.pending) pend.push_back({{"tid", r.tid}, {"name", r.name}, {"reason", r.reason}});
        tr = {{"patch", g_transition_patch->name},
              {"target", g_view.target_state.load() == kPatched ? "patched" : "unpatched"},
              {"elapsed", transition_elapsed_seconds()},
              {"pending", pend}};
    }
    std::string why;
    const HandlerWalkStats hs = stack_check_handler_stats();
    const ReadAheadStats ra = read_ahead_stats();
    auto hold = [](HoldKind k) {
        const HoldSummary h = hold_summary(k);
        // [[upper edge in µs or null, count], ...]
        nlohmann::json hist = nlohmann::json::array();
        for (int b = 0; b < kHoldBuckets; b++)
            hist.push_back(
                {b < kHoldBuckets - 1 ? nlohmann::json(kHoldBucketsUs[b]) : nlohmann::json(nullptr),
                 h.buckets[b]});
        return nlohmann::json{{"count", h.count},
                              {"total_us", static_cast<double>(h.total_ns) / 1e3},
                              {"max_us", static_cast<double>(h.max_ns) / 1e3},
                              {"histogram_us", hist}};
    };
    return {
        {"pid", getpid()},
        {"patches", patches},
        {"unloadable", disabled},
        {"transition", tr},
        {"objects_watched", objects_watched()},
        {"signal_walks",
         {{"with_rows", hs.cached},
          {"with_libgcc", hs.full},
          {"timed_out", hs.timed_out},
          {"rows", hs.rows}}},
        {"self_check_walks",
         {{"with_rows", hs.self_cached}, {"with_libgcc", hs.self_full}, {"timed_out", hs.self_timed_out}}},
        {"holds", {{"signal", hold(HoldKind::kSignal)}, {"self_check", hold(HoldKind::kSelfCheck)}}},
        {"read_ahead", {{"passes", ra.passes}, {"threads", ra.threads}}},
        {"refusing", core_refusing(&why) ? nlohmann::json(why) : nlohmann::json(nullptr)}};
}

nlohmann::json threads_json() {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    nlohmann::json v = nlohmann::json::array();
    for (auto &r : thread_reports())
        v.push_back({{"tid", r.tid},
                     {"name", r.name},
                     {"patch_state", r.state},
                     {"pending", r.pending},
                     {"reason", r.reason}});
    return v;
}

}  // namespace graft
