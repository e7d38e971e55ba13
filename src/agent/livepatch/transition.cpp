#include "agent/livepatch/transition.hpp"

#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/thread_verdict.hpp"
#include "agent/proc/read_ahead.hpp"
#include "agent/proc/task_files.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {

Patch *g_transition_patch = nullptr;

namespace {

using Clock = std::chrono::steady_clock;

// The most the transition signal's handler may spend in libgcc's walk (the rows' walk costs a
// fraction of a µs per frame and needs no limit). With the kernel's delivery of the signal, a
// thread is then held under 50 µs by one signal (docs/performance.md); a walk that runs out
// leaves the rows of its stack to the worker, and the next signal's check uses them.
// GRAFT_OWN_WALK_BUDGET_US overrides it (set_own_walk_budget_us, before any thread checks
// itself); relaxed: nothing is published with it.
std::atomic<uint64_t> g_own_walk_budget_ns{25000};
// Checks in a row that may run out before one is allowed all the time it needs.
constexpr uint8_t kMaxWalkTimeouts = 2;

// The forbidden ranges of the transition in progress, built for the current target. Published
// (release) by start_transition()/reverse_transition(); read (acquire) inside read-side sections
// by transition_self_check(); a replaced table is freed only after synchronize_threads(). A
// reverse withdraws it before the target flips (reverse_transition()).
std::atomic<ForbiddenTable *> g_forbidden{nullptr};

double g_signal_timeout = 15.0;
int g_signal = 0;
Clock::time_point g_started;
Clock::time_point g_next_signal;
Clock::time_point g_next_retry;
int g_retry_ms = 1;
auto &g_reports = *new std::vector<ThreadReport>;  // as of the last try; never destroyed

// Threads seen running in the passes so far (thread_verdict.hpp), by tid. Worker only.
auto &g_streaks = *new std::map<pid_t, RunningStreak>;

// Threads to look at in one pass from which their first reads are done ahead on a helper
// thread (read_ahead.hpp); 0: never. GRAFT_READ_AHEAD sets it (set_read_ahead_min) before the
// worker starts; the worker alone reads it afterwards.
size_t g_read_ahead_min = 64;
// Worker only (written in a pass, read by read_ahead_stats() under the core mutex).
ReadAheadStats g_read_ahead_stats;

pid_t worker_tid() {
    return core_worker_tid();
}

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

// The reads a check of a blocked thread starts with, in this order: its scheduling count (the
// descriptor stays open for the second read after the walk), where it sleeps, and for a
// sleeping thread the first bytes of its stack, into a ring of buffers: at most
// kReadAheadWindow looks are read and not yet used (read_ahead.hpp), so look i can have buffer
// i % kReadAheadWindow. Done on the read-ahead helper or on the worker.
struct FirstLook {
    int sched_fd = -1;
    bool have_slices = false;
    unsigned long long slices0 = 0;
    int err = 0;  // of the syscall file (read_syscall_err)
    Frozen a;
    StackPrefix stack;
};
constexpr size_t kReadAheadWindow = 32;
using PrefixRing = unsigned char[kReadAheadWindow][kStackPrefixMax];
struct FirstLooks {
    const pid_t *tids;
    FirstLook *looks;
    PrefixRing *ring;
};
void read_first_look(size_t i, void *ctx) noexcept {
    auto *c = static_cast<FirstLooks *>(ctx);
    FirstLook &l = c->looks[i];
    try {
        l.sched_fd = open_task_file(c->tids[i], "schedstat");
        l.have_slices = pread_timeslices(l.sched_fd, &l.slices0);
        l.err = read_syscall_err(c->tids[i], &l.a);
        if (l.err == 0 && l.a.sleeping && l.a.sp)
            l.stack = copy_stack_prefix(l.a.sp, (*c->ring)[i % kReadAheadWindow]);
    } catch (...) {  // the syscall line's string
        l.err = ENOMEM;
    }
}
// Worker only (passes), allocated once: 256 KiB.
PrefixRing &prefix_ring() {
    static auto *ring = new PrefixRing[1];
    return *ring;
}

// Whether a second CPU can run the read-ahead helper while the worker runs: the worker's own
// affinity, once.
bool have_second_cpu() {
    static const bool two = [] {
        cpu_set_t set;
        return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 2;
    }();
    return two;
}

std::map<pid_t, ThreadSlot *> slot_map() {
    std::map<pid_t, ThreadSlot *> m;
    uint32_t n = slots_high_water();
    for (uint32_t i = 0; i < n; i++) {
        ThreadSlot *s = slot_at(i);
        pid_t t = s->tid.load(std::memory_order_acquire);
        if (t > 0) m[t] = s;
    }
    return m;
}

struct ObjectsGeneration {
    unsigned long long adds = 0, subs = 0;
};

int count_adds_subs(dl_phdr_info *info, size_t, void *arg) {
    auto *g = static_cast<ObjectsGeneration *>(arg);
    g->adds = info->dlpi_adds;
    g->subs = info->dlpi_subs;
    return 1;  // the counters are the same in every entry: one is enough
}

ObjectsGeneration objects_generation() {
    ObjectsGeneration g;
    dl_iterate_phdr(count_adds_subs, &g);
    return g;
}

bool approval_holds(ThreadSlot *s, uint32_t epoch) {
    uint64_t ap = s->approved.load(std::memory_order_acquire);
    return approval_valid(ap, s->seq.load(std::memory_order_acquire), epoch);
}

void bump_epoch() {
    g_view.epoch.fetch_add(1, std::memory_order_acq_rel);
}

void set_func_transition(Patch *p, bool v) {
    for (auto &o : p->objs)
        for (auto &f : o->funcs) f->transition.store(v, std::memory_order_release);
}

// When pending threads are signalled next, counting from `from` (g_signal_timeout is checked to
// be finite and in range by set_signal_timeout()).
Clock::time_point after_signal_timeout(Clock::time_point from) {
    return from +
           std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g_signal_timeout));
}

void schedule_retry(bool reset) {
    g_retry_ms = reset ? 1 : std::min(g_retry_ms * 2, 100);
    g_next_retry = Clock::now() + std::chrono::milliseconds(g_retry_ms);
}

}  // namespace

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

namespace {

// Objects loaded or unloaded since the last pass: the unwinder's module list is stale.
void note_object_changes() {
    static ObjectsGeneration s_seen;
    if (ObjectsGeneration g = objects_generation(); g.subs != s_seen.subs) {
        s_seen = g;
        stack_check_invalidate();
    } else if (g.adds != s_seen.adds) {
        s_seen = g;
        stack_check_objects_added();
    }
}

// Releases the slots of threads that died without releasing theirs (slots are claimed lazily,
// outside pthread_create) and returns the threads that live. The slots are scanned first, then
// the threads listed, so that a thread that claimed a slot before the scan is in the list; a
// slot is released by CAS, only while it still names that tid.
std::vector<pid_t> reap_dead_slots() {
    std::vector<std::pair<ThreadSlot *, pid_t>> claimed;
    for (uint32_t i = 0, n = slots_high_water(); i < n; i++)
        if (pid_t t = slot_at(i)->tid.load(std::memory_order_acquire); t > 0)
            claimed.emplace_back(slot_at(i), t);
    auto tids = list_tids();
    std::vector<pid_t> sorted = tids;
    std::sort(sorted.begin(), sorted.end());
    for (auto &[slot, t] : claimed)
        if (!std::binary_search(sorted.begin(), sorted.end(), t)) slot->tid.compare_exchange_strong(t, 0);
    return tids;
}

// One pass of try_complete_transition: what it knows and what it decided.
struct Pass {
    Patch *patch;
    int target;
    uint32_t epoch;
    const ForbiddenTable *table;
    bool signal_round;
    std::map<pid_t, ThreadSlot *> slots;
    std::vector<ThreadReport> reports;
    struct Approval {
        size_t report;
        ThreadSlot *slot;
        uint32_t seq;
    };
    std::vector<Approval> approvals;
    std::vector<pid_t> to_signal;

    ThreadSlot *slot_of(pid_t tid) const {
        auto it = slots.find(tid);
        return it == slots.end() ? nullptr : it->second;
    }
};

// Looks at one thread not yet switched, from its first reads (read ahead or not): reads what its
// verdict needs, has it judged (judge_thread) and records the report, approval and signal.
void look_at_thread(Pass &ps, pid_t tid, int state, FirstLook &look) {
    ThreadSlot *s = ps.slot_of(tid);
    ThreadFacts f;
    f.read_err = look.err;
    f.has_state = s != nullptr;
    f.signal_round = ps.signal_round;
    // The descriptor of its scheduling count, read before anything else of it: if the count is
    // the same after the walk below, it did not run in between, so what the walk read was a
    // frozen stack (a thread that went to sleep meanwhile was already scheduled in, and stays
    // asleep with the registers `syscall` reports).
    struct Fd {
        int fd;
        ~Fd() {
            if (fd >= 0) close(fd);
        }
    } sched{look.sched_fd};
    look.sched_fd = -1;
    Frozen &a = look.a;
    if (look.err == 0) {
        // Running threads, signal rounds and kernels without schedstat need the status file too.
        if (!a.sleeping || ps.signal_round || !look.have_slices) f.status_ok = read_status(tid, g_signal, &a);
        f.sleeping = a.sleeping;
        f.sig_blocked = a.sig_blocked;
    }
    if (look.err == 0 && f.status_ok) {
        if (!a.sleeping) {
            RunningSample x;
            x.voluntary = a.voluntary;
            unsigned long long slices = 0;
            x.have_cpu = read_schedstat(tid, &x.cpu_ns, &slices);
            x.now = Clock::now();
            f.cpu_bound = extend_running_streak(&g_streaks[tid], x);
        } else {
            g_streaks.erase(tid);  // a running streak ends when the thread is seen asleep
        }
        if (a.sleeping && s) {
            f.seq = s->seq.load(std::memory_order_acquire);  // while frozen: the approval names it
            f.stack = check_blocked_thread(tid, a.sp, a.pc, ps.table, &look.stack);
            if (look.have_slices) {
                unsigned long long slices1 = 1;
                f.stable = pread_timeslices(sched.fd, &slices1) && slices1 == look.slices0;
            } else {
                // No scheduling count: the context-switch counters and where it sleeps must not
                // have changed (a thread that woke and slept again switched out once more).
                Frozen b;
                f.stable = read_frozen(tid, g_signal, &b) && b.sleeping && b.syscall_line == a.syscall_line &&
                           b.ctx_switches == a.ctx_switches;
            }
        }
    }
    ThreadVerdict v = judge_thread(tid, f);
    if (v.kind == ThreadVerdict::kGone) return;
    if (v.kind == ThreadVerdict::kApprove) {
        s->approved.store(make_approval(ps.epoch, f.seq), std::memory_order_release);
        ps.approvals.push_back({ps.reports.size(), s, f.seq});
    }
    if (v.signal) ps.to_signal.push_back(tid);
    // Its name is read only if someone asks (thread_reports()).
    ps.reports.push_back(ThreadReport{tid, {}, state, true, std::move(v.reason)});
}

// Approvals given in this pass hold for threads that entered no selector since; then threads
// that consumed an earlier approval or switched themselves meanwhile. True if none is pending.
bool confirm_switches(Pass &ps) {
    // Pairs with read_lock(): a thread that entered the selector before this point shows its
    // new seq below; one that enters after it sees the approval stored in look_at_thread().
    if (!ps.approvals.empty()) arch::membarrier_all();
    auto switched = [&](ThreadReport &r) {
        r.pending = false;
        r.state = ps.target;
        r.reason.clear();
    };
    for (auto &ap : ps.approvals) {
        auto &r = ps.reports[ap.report];
        if (ap.slot->seq.load(std::memory_order_acquire) == ap.seq || effective_state(ap.slot) == ps.target)
            switched(r);
        else
            r.reason = "running";
    }
    bool complete = true;
    for (auto &r : ps.reports) {
        if (!r.pending) continue;
        if (ThreadSlot *s = ps.slot_of(r.tid);
            s && (effective_state(s) == ps.target || approval_holds(s, ps.epoch))) {
            switched(r);
            continue;
        }
        complete = false;
    }
    return complete;
}

// Sends the transition signal to the threads judged to need it, while its handler is graft's.
void signal_stragglers(Pass &ps) {
    if (ps.signal_round) {
        log_fmt("graft: '%s': signaling remaining threads", ps.patch->name.c_str());
        g_next_signal = after_signal_timeout(Clock::now());
    }
    int sig = transition_signal();
    if (!ps.to_signal.empty() && !transition_handler_installed()) {
        // The program replaced graft's handler: signalling would run its handler, or kill it.
        // The threads stay pending until they switch by themselves or a force.
        static const Patch *s_warned = nullptr;
        if (s_warned != ps.patch)
            log_fmt(
                "graft: '%s': the transition signal's handler is not graft's (the program changed "
                "it); pending threads are not signalled",
                ps.patch->name.c_str());
        s_warned = ps.patch;
        return;
    }
    for (pid_t tid : ps.to_signal) {
        if (!ps.signal_round) {
            // Early signal to a CPU-bound thread: look once more, just before sending, that it
            // is still running and has not blocked since (a blocked one would see EINTR).
            Frozen now;
            auto st = g_streaks.find(tid);
            if (st == g_streaks.end() || !read_frozen(tid, g_signal, &now) || now.sleeping ||
                now.voluntary != st->second.voluntary_at_start)
                continue;
        }
        if (ThreadSlot *s = ps.slot_of(tid)) s->signalled.fetch_add(1, std::memory_order_relaxed);
        syscall(SYS_tgkill, getpid(), tid, sig);
    }
}

}  // namespace

void try_complete_transition() {
    Patch *p = g_transition_patch;
    if (!p) return;
    note_object_changes();
    // Rows for the pcs signal handlers missed, and those the last pass computed (frame_rules.hpp).
    stack_check_share_rules();
    TaskDir task_dir;
    const std::vector<pid_t> tids = reap_dead_slots();
    Pass ps{p,
            g_view.target_state.load(),
            g_view.epoch.load(),
            g_forbidden.load(std::memory_order_acquire),
            Clock::now() >= g_next_signal,
            slot_map(),
            {},
            {},
            {}};
    const pid_t me = worker_tid();
    // Pairs with read_lock(): after it, a seq equal to an approval's means no selector entry
    // since the approval was given (approval_holds()).
    arch::membarrier_all();

    // Which threads need looking at: not the worker, not switched, not approved earlier with
    // no selector entry since (the membarrier above orders these reads after any such entry).
    std::vector<int> state_of(tids.size());
    std::vector<pid_t> to_look;
    for (size_t i = 0; i < tids.size(); i++) {
        ThreadSlot *s = ps.slot_of(tids[i]);
        state_of[i] = effective_state(s);
        if (tids[i] != me && state_of[i] != ps.target && !(s && approval_holds(s, ps.epoch)))
            to_look.push_back(tids[i]);
        else
            state_of[i] = ps.target;
    }
    // Their first reads, ahead of the walks on a second CPU when there are many. Declared in
    // this order so that the helper is joined before any descriptor it opened is closed here.
    std::vector<FirstLook> looks(to_look.size());
    FirstLooks looks_ctx{to_look.data(), looks.data(), &prefix_ring()};
    struct CloseLooks {
        std::vector<FirstLook> &v;
        ~CloseLooks() {
            for (auto &l : v)
                if (l.sched_fd >= 0) close(l.sched_fd);
        }
    } close_looks{looks};
    ReadAhead ahead(to_look.size(), read_first_look, &looks_ctx, have_second_cpu() ? g_read_ahead_min : 0,
                    kReadAheadWindow);
    size_t next_look = 0;
    for (size_t i = 0; i < tids.size(); i++) {
        if (state_of[i] == ps.target) {
            ps.reports.push_back(ThreadReport{tids[i], {}, ps.target, false, {}});
            continue;
        }
        ahead.wait(next_look);
        look_at_thread(ps, tids[i], state_of[i], looks[next_look++]);
    }
    ahead.finish();  // every look was used: the helper has nothing left to read
    if (ahead.helper_ran()) {
        g_read_ahead_stats.passes++;
        g_read_ahead_stats.threads += ahead.read_by_helper();
    }
    const bool complete = confirm_switches(ps);
    g_reports = ps.reports;
    if (complete) {
        complete_transition();
        return;
    }
    signal_stragglers(ps);
    schedule_retry(false);
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
        core_unpatch_objects(p);
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
    core_route_settled_functions();
    for (auto &o : p->objs) {
        if (!o->loaded) continue;
        if (target == kPatched)
            core_post_patch(o.get());
        else
            core_post_unpatch(o.get());
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
