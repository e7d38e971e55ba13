#include "agent/livepatch/transition.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>

#include "agent/livepatch/callbacks.hpp"
#include "agent/livepatch/core.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/thread_verdict.hpp"
#include "agent/livepatch/transition_internal.hpp"
#include "agent/proc/task_files.hpp"
#include "agent/process/loader_watch.hpp"
#include "agent/process/object_events.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/birth_redirect.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {

Patch *g_transition_patch = nullptr;
std::atomic<ForbiddenTable *> g_forbidden{nullptr};
TransitionClock::time_point g_next_signal;
std::vector<ThreadReport> &g_reports = *new std::vector<ThreadReport>;  // never destroyed
std::map<pid_t, RunningStreak> &g_streaks = *new std::map<pid_t, RunningStreak>;
size_t g_read_ahead_min = 64;
ReadAheadStats g_read_ahead_stats;

namespace {

using Clock = TransitionClock;

// The most the transition signal's handler may spend in libgcc's walk (the rows' walk costs a
// fraction of a µs per frame and needs no limit). With the kernel's delivery of the signal, a
// thread is then held under 50 µs by one signal (docs/performance.md); a walk that runs out
// leaves the rows of its stack to the worker, and the next signal's check uses them.
// GRAFT_OWN_WALK_BUDGET_US overrides it (set_own_walk_budget_us, before any thread checks
// itself); relaxed: nothing is published with it.
std::atomic<uint64_t> g_own_walk_budget_ns{25000};
// Checks in a row that may run out before one is allowed all the time it needs.
constexpr uint8_t kMaxWalkTimeouts = 2;

double g_signal_timeout = 15.0;
int g_signal = 0;
Clock::time_point g_started;
Clock::time_point g_next_retry;
int g_retry_ms = 1;

ForbiddenTable *build_forbidden(Patch *p, int target) {
    std::vector<ForbiddenRange> v;
    for (auto &o : p->objs) {
        if (!o->patched) continue;
        for (auto &f : o->funcs) {
            if (target == kUnpatched) {
                uintptr_t lo = reinterpret_cast<uintptr_t>(f->new_func);
                v.push_back({lo, lo + f->new_size, f->old_name.c_str()});
            } else {
                Func *prev = f->below.load(std::memory_order_relaxed);
                if (!prev || prev->nop) {
                    v.push_back({f->old_addr, f->old_addr + f->old_size, f->old_name.c_str()});
                    // A rewritten entry's first instructions run from the relocation block.
                    const auto &e = f->stack->entry;
                    if (e.ordinary) v.push_back({e.body, e.copy_end, f->old_name.c_str()});
                } else {
                    uintptr_t lo = reinterpret_cast<uintptr_t>(prev->new_func);
                    v.push_back({lo, lo + prev->new_size, f->old_name.c_str()});
                }
            }
        }
    }
    auto *t = static_cast<ForbiddenTable *>(
        std::malloc(sizeof(ForbiddenTable) + sizeof(ForbiddenRange) * (v.size() + 1)));
    t->count = v.size();
    for (size_t i = 0; i < v.size(); i++) t->ranges[i] = v[i];
    return t;
}

void publish_forbidden(ForbiddenTable *t) {
    ForbiddenTable *old = g_forbidden.exchange(t, std::memory_order_acq_rel);
    if (old) {
        synchronize_threads();  // no self-check still reads the old table
        std::free(old);
    }
}

auto &g_names = *new std::map<pid_t, std::string>;  // tid -> comm, cleared per transition

std::string thread_name(pid_t tid) {
    auto it = g_names.find(tid);
    if (it != g_names.end()) return it->second;
    return g_names[tid] = read_thread_name(tid);
}

void bump_epoch() {
    g_view.epoch.fetch_add(1, std::memory_order_acq_rel);
}

void set_func_transition(Patch *p, bool v) {
    for (auto &o : p->objs)
        for (auto &f : o->funcs) f->transition.store(v, std::memory_order_release);
}

}  // namespace

std::map<pid_t, ThreadSlot *> slot_map() {
    std::map<pid_t, ThreadSlot *> m;
    uint32_t n = slots_high_water();
    for (uint32_t i = 0; i < n; i++) {
        ThreadSlot *s = slot_at(i);
        const pid_t t = s->tid.load(std::memory_order_acquire);
        const pid_t owner = slot_owner(t);
        if (!owner) continue;
        auto [it, fresh] = m.emplace(owner, s);
        if (fresh) continue;
        // Two slots name one thread: it claimed its own while the worker's offer was being made
        // (offer_slot), and was not approved on the offer (it did not stay blocked). The offer
        // is the one to drop; its own slot is the one it uses.
        ThreadSlot *other = it->second;
        ThreadSlot *offered = (t & kOfferBit)                                            ? s
                              : (other->tid.load(std::memory_order_acquire) & kOfferBit) ? other
                                                                                         : nullptr;
        if (!offered) continue;
        withdraw_offer(offered, owner);
        if (offered->tid.load(std::memory_order_acquire) == 0) it->second = offered == s ? other : s;
    }
    return m;
}

bool approval_holds(ThreadSlot *s, uint32_t epoch) {
    uint64_t ap = s->approved.load(std::memory_order_acquire);
    return approval_valid(ap, s->seq.load(std::memory_order_acquire), epoch);
}

// g_signal_timeout is checked to be finite and in range by set_signal_timeout().
Clock::time_point after_signal_timeout(Clock::time_point from) {
    return from +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g_signal_timeout));
}

void schedule_retry(bool reset) {
    g_retry_ms = reset ? 1 : std::min(g_retry_ms * 2, 100);
    g_next_retry = Clock::now() + std::chrono::milliseconds(g_retry_ms);
}

void set_read_ahead_min(size_t threads) {
    g_read_ahead_min = threads;
}

ReadAheadStats read_ahead_stats() {
    return g_read_ahead_stats;
}

void set_own_walk_budget_us(double us) {
    if (us > 0)
        g_own_walk_budget_ns.store(static_cast<uint64_t>(us * 1000.0 + 0.5) | 1, std::memory_order_relaxed);
}

bool set_signal_timeout(double s) {
    if (!(s >= 0 && s <= kMaxSignalTimeout)) return false;
    g_signal_timeout = s;
    return true;
}
double signal_timeout() {
    return g_signal_timeout;
}
int transition_signal() {
    if (!g_signal) {
        const char *e = std::getenv("GRAFT_SIGNAL");
        int v = e && *e ? std::atoi(e) : 0;
        // Only a real-time signal: a standard one may mean something to the program.
        g_signal = v >= SIGRTMIN && v <= SIGRTMAX ? v : SIGRTMIN + 6;
    }
    return g_signal;
}

void init_transition(Patch *p, int state) {
    g_transition_patch = p;
    // Under attach, objects loaded since the last transition call the C library's pthread_create:
    // their threads born from now on get graft state at birth too (the hook makes the lists
    // stable while the core mutex is held; with a load or unload in flight, the next time).
    if (thread_births_redirected() && objects_watched() && loader_quiet())
        redirect_thread_births(/*loader_locked=*/false);
    log_fmt("graft: '%s': initializing %s transition", p->name.c_str(),
            state == kPatched ? "patching" : "unpatching");
    // Every thread, including ones graft never saw, now counts as being in the initial state:
    // a new generation makes every older per-thread word stale (klp_init_transition's loop).
    // Order matters (x86 keeps stores in order; the releases say so for the compiler): a selector
    // that loads the new target (acquire) then sees the new epoch, generation and initial state,
    // so it can never combine the new target with an older transition's approval or word.
    bump_epoch();
    g_view.initial_state.store(!state, std::memory_order_relaxed);
    g_view.gen.fetch_add(1, std::memory_order_release);
    g_view.target_state.store(state, std::memory_order_release);
    // Release (smp_wmb in klp_init_transition): the states above are visible to any selector
    // that sees transition == true (it loads transition with acquire, then the states).
    set_func_transition(p, true);
    // The worker's own stack holds no patched function: it is switched at once.
    if (ThreadSlot *s = self_slot()) set_own_state(s, state);
    g_streaks.clear();
    g_reports.clear();
    g_names.clear();
}

bool start_transition(std::string *why) {
    Patch *p = g_transition_patch;
    int target = g_view.target_state.load();
    // Route every function of the patch through the selector before any thread may switch.
    std::vector<RouteChange> routes;
    for (auto &o : p->objs) {
        if (!o->patched) continue;
        for (auto &f : o->funcs) routes.push_back({f->stack, true, stub_address(f->stack)});
    }
    // One batch for the whole patch: it either routes every function or changes nothing.
    if (!apply_routes(routes, why)) return false;
    publish_forbidden(build_forbidden(p, target));
    log_fmt("graft: '%s': starting %s transition", p->name.c_str(),
            target == kPatched ? "patching" : "unpatching");
    g_started = Clock::now();
    g_next_signal = after_signal_timeout(g_started);
    schedule_retry(true);
    g_next_retry = Clock::now();  // first try right away
    return true;
}

void complete_transition() {
    Patch *p = g_transition_patch;
    const int target = g_view.target_state.load();
    log_fmt("graft: '%s': completing %s transition", p->name.c_str(),
            target == kPatched ? "patching" : "unpatching");
    if (target == kPatched && p->replace) {
        // Right after the replaced patches left the stacks, the nops are the last entries of
        // theirs: popping them empties those stacks, which the routing below closes.
        core_unpatch_replaced_patches(p);
        core_discard_nops(p);
    }
    if (target == kUnpatched) {
        unpatch_objects(p);
        // No selector may still see this patch's entries once `transition` is cleared.
        synchronize_threads();
    }
    set_func_transition(p, false);
    bump_epoch();
    if (target == kPatched) synchronize_threads();  // no selector sees transition with IDLE
    g_view.initial_state.store(kIdle, std::memory_order_relaxed);
    g_view.target_state.store(kIdle, std::memory_order_release);
    publish_forbidden(nullptr);
    // Fully switched: entries now jump straight to their top version (or stay closed).
    route_settled_functions();
    for (auto &o : p->objs) {
        if (!o->loaded) continue;
        if (target == kPatched)
            post_patch_callback(o.get());
        else
            post_unpatch_callback(o.get());
    }
    log_fmt("graft: '%s': %s complete", p->name.c_str(), target == kPatched ? "patching" : "unpatching");
    g_transition_patch = nullptr;
    g_reports.clear();
    core_transition_finished(p, target);
}

void transition_objects_changed() {
    Patch *p = g_transition_patch;
    if (!p) return;
    // New functions cannot be on any stack yet and gone ones no longer can: approvals given
    // against the old set stay true, only the set itself is republished.
    publish_forbidden(build_forbidden(p, g_view.target_state.load()));
}

void abort_unstarted_transition() {
    Patch *p = g_transition_patch;
    log_fmt("graft: '%s': the %s transition could not start", p->name.c_str(),
            g_view.target_state.load() == kPatched ? "patching" : "unpatching");
    // No selector runs for these functions (their routing was undone or never written), so the
    // order of these stores is not observed; the epoch voids anything approved against them.
    bump_epoch();
    g_view.target_state.store(kIdle, std::memory_order_release);
    g_view.initial_state.store(kIdle, std::memory_order_relaxed);
    set_func_transition(p, false);
    g_transition_patch = nullptr;
}

void cancel_transition() {
    Patch *p = g_transition_patch;
    log_fmt("graft: '%s': canceling patching transition, going to unpatch", p->name.c_str());
    g_view.target_state.store(kUnpatched);
    bump_epoch();
    complete_transition();
}

void reverse_transition() {
    Patch *p = g_transition_patch;
    const int target = g_view.target_state.load();
    log_fmt("graft: '%s': reversing transition from %s", p->name.c_str(),
            target == kPatched ? "patching to unpatching" : "unpatching to patching");
    // Approvals were given against the old target's forbidden set: void them first (epoch).
    // Then the old table is withdrawn, and only after the grace period the target flips: a
    // self-check that read the new target must never walk with the old table (it would switch
    // a thread that stands in a new function to the old set, or the reverse), and one that read
    // the old table has ended. A check that sees no table does nothing; one that read the old
    // target and then finds the new table fails its re-check of the target
    // (transition_self_check).
    bump_epoch();
    ForbiddenTable *old = g_forbidden.exchange(nullptr, std::memory_order_acq_rel);
    synchronize_threads();
    std::free(old);
    p->enabled = !p->enabled;
    const int nt = !target;
    // Release: a self-check that loads the new table (acquire) sees this target on its re-check.
    g_view.target_state.store(nt, std::memory_order_release);
    publish_forbidden(build_forbidden(p, nt));
    log_fmt("graft: '%s': starting %s transition", p->name.c_str(),
            nt == kPatched ? "patching" : "unpatching");
    g_started = Clock::now();
    g_next_signal = after_signal_timeout(g_started);
    g_streaks.clear();
    schedule_retry(true);
}

void force_transition() {
    Patch *p = g_transition_patch;
    const int target = g_view.target_state.load();
    log_fmt("graft: '%s': forcing remaining threads to the %s state", p->name.c_str(),
            target == kPatched ? "patched" : "unpatched");
    // Every thread, whatever its word says, is now at the target (klp_update_patch_state on all).
    g_view.initial_state.store(target, std::memory_order_relaxed);
    g_view.gen.fetch_add(1, std::memory_order_release);
    bump_epoch();
    core_mark_forced(p, target);
    schedule_retry(true);
    g_next_retry = Clock::now();
}

std::vector<ThreadReport> thread_reports() {
    std::vector<ThreadReport> v;
    if (g_transition_patch && !g_reports.empty()) {
        v = g_reports;
        for (auto &r : v)
            if (r.name.empty()) r.name = thread_name(r.tid);
        return v;
    }
    auto slots = slot_map();
    for (pid_t tid : list_tids()) {
        auto it = slots.find(tid);
        int st = g_transition_patch ? effective_state(it == slots.end() ? nullptr : it->second) : kIdle;
        v.push_back({tid, thread_name(tid), st, g_transition_patch && st != g_view.target_state.load(), {}});
    }
    return v;
}

int pending_count() {
    int n = 0;
    for (auto &r : g_reports) n += r.pending;
    return n;
}

double transition_elapsed_seconds() {
    return std::chrono::duration<double>(Clock::now() - g_started).count();
}

int transition_retry_ms() {
    if (!g_transition_patch) return -1;
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(g_next_retry - Clock::now()).count();
    return d < 0 ? 0 : static_cast<int>(d);
}

void transition_self_check(SelfContext ctx, const InterruptedRegs *regs) {
    ThreadSlot *s = self_slot();
    if (!s) return;
    read_lock(s);
    int target = g_view.target_state.load(std::memory_order_acquire);
    if (target != kIdle && effective_state(s) != target) {
        const ForbiddenTable *t = g_forbidden.load(std::memory_order_acquire);
        if (t) {
            // A thread held by the transition signal: at most the budget in libgcc's walk, unless
            // the last checks all ran out of it (walk_timeouts), so that progress is certain; the
            // signal comes again. Not in the selector: its check at a function's entry is the
            // thread's one chance to switch before it holds that function's frame (it may then
            // block in it for as long as it likes), so it gets all the time it needs.
            const uint64_t now = ctx == SelfContext::kSignalHandler ? hold_now_ns() : 0;
            const uint64_t deadline = now && s->walk_timeouts < kMaxWalkTimeouts
                                          ? now + g_own_walk_budget_ns.load(std::memory_order_relaxed)
                                          : 0;
            StackResult r = check_own_stack(ctx, t, regs, deadline);
            s->walk_timeouts = r.timed_out ? static_cast<uint8_t>(s->walk_timeouts + 1) : 0;
            // The target may have been reversed while we looked: switch only if the target and
            // the table are still the pair we read (reverse_transition() withdraws the table,
            // waits for this section, flips the target, then publishes the new table).
            if (r.verdict == StackVerdict::kClean &&
                g_view.target_state.load(std::memory_order_acquire) == target &&
                g_forbidden.load(std::memory_order_acquire) == t)
                set_own_state(s, target);
            // The busy function's return-address slot (its CFA - 8): see select().
            s->busy_ra_slot = r.verdict == StackVerdict::kBusy && r.busy_cfa ? r.busy_cfa - 8 : UINTPTR_MAX;
        }
    }
    read_unlock(s);
}

bool try_switch_self_from_selector(uintptr_t ra_slot, uintptr_t bp) {
    const InterruptedRegs caller{*reinterpret_cast<const uintptr_t *>(ra_slot), ra_slot + 8, bp, true};
    transition_self_check(SelfContext::kSelector, &caller);
    return true;
}

}  // namespace graft
