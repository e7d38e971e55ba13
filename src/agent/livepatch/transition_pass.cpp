// One pass of try_complete_transition (klp_try_complete_transition): every thread not yet
// switched is looked at where it stands, judged (thread_verdict.hpp), approved, confirmed or
// signalled. The transition's life around it is in transition.cpp.
#include <link.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition_internal.hpp"
#include "agent/proc/read_ahead.hpp"
#include "agent/proc/task_files.hpp"
#include "agent/service/log.hpp"

namespace graft {

namespace {

using Clock = TransitionClock;

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
        if (pid_t t = slot_at(i)->tid.load(std::memory_order_acquire); slot_owner(t))
            claimed.emplace_back(slot_at(i), t);
    auto tids = list_tids();
    std::vector<pid_t> sorted = tids;
    std::sort(sorted.begin(), sorted.end());
    for (auto &[slot, t] : claimed)
        if (!std::binary_search(sorted.begin(), sorted.end(), slot_owner(t)))
            slot->tid.compare_exchange_strong(t, 0);
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
        bool offered;  // the slot was the worker's offer, not taken yet (offer_to_blocked_thread)
    };
    std::vector<Approval> approvals;
    std::vector<pid_t> to_signal;

    ThreadSlot *slot_of(pid_t tid) const {
        auto it = slots.find(tid);
        return it == slots.end() ? nullptr : it->second;
    }
};

// A thread seen running in this pass: its running streak extended; true if it is CPU-bound.
bool seen_running(pid_t tid, const Frozen &a) {
    RunningSample x;
    x.voluntary = a.voluntary;
    unsigned long long slices = 0;
    x.have_cpu = read_schedstat(tid, &x.cpu_ns, &slices);
    x.now = Clock::now();
    return extend_running_streak(&g_streaks[tid], x);
}

// A thread seen blocked with no slot (born where no birth hook ran): the worker offers it one
// (offer_slot), so that it can be checked where it stands and approved like any other. The offer
// comes after the first look's scheduling count and before the check's second: an approval needs
// the two to be equal, so the thread stayed blocked from before the offer until after its check,
// and can neither have claimed a slot of its own unseen nor have missed the offer when it wakes.
// A slot it claimed before the first look is found here, and the offer taken back.
ThreadSlot *offer_to_blocked_thread(Pass &ps, pid_t tid) {
    ThreadSlot *offered = offer_slot(tid);
    if (!offered) return nullptr;
    pid_t t = 0;
    if (ThreadSlot *s = other_slot_of(offered, tid, &t)) {
        withdraw_offer(offered, tid);
        if (t != tid) return nullptr;  // one being set up, or another offer: next pass
        ps.slots[tid] = s;
        return s;
    }
    ps.slots[tid] = offered;
    return offered;
}

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
        if (!a.sleeping || ps.signal_round || !look.have_slices)
            f.status_ok = read_status(tid, transition_signal(), &a);
        f.sleeping = a.sleeping;
        f.sig_blocked = a.sig_blocked;
    }
    if (look.err == 0 && f.status_ok) {
        if (!a.sleeping) {
            f.cpu_bound = seen_running(tid, a);
        } else {
            g_streaks.erase(tid);  // a running streak ends when the thread is seen asleep
        }
        if (a.sleeping && !s) s = offer_to_blocked_thread(ps, tid);
        f.has_state = s != nullptr;
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
                f.stable = read_frozen(tid, transition_signal(), &b) && b.sleeping &&
                           b.syscall_line == a.syscall_line && b.ctx_switches == a.ctx_switches;
            }
        }
    }
    ThreadVerdict v = judge_thread(tid, f);
    if (v.kind == ThreadVerdict::kGone) return;
    if (v.kind == ThreadVerdict::kApprove) {
        s->approved.store(make_approval(ps.epoch, f.seq), std::memory_order_release);
        const bool offered = s->tid.load(std::memory_order_acquire) & kOfferBit;
        ps.approvals.push_back({ps.reports.size(), s, f.seq, offered});
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
        // An offer counts only while no other slot names its thread (after the membarrier, a
        // slot the thread claimed for itself is seen): one that missed its offer runs on its own,
        // which was not approved. The approval is taken back with the offer.
        if (ap.offered && other_slot_of(ap.slot, r.tid)) {
            ap.slot->approved.store(0, std::memory_order_release);
            withdraw_offer(ap.slot, r.tid);
            r.reason = "running";
            continue;
        }
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
            if (st == g_streaks.end() || !read_frozen(tid, transition_signal(), &now) || now.sleeping ||
                now.voluntary != st->second.voluntary_at_start)
                continue;
        }
        if (ThreadSlot *s = ps.slot_of(tid)) s->signalled.fetch_add(1, std::memory_order_relaxed);
        syscall(SYS_tgkill, getpid(), tid, sig);
    }
}

// Which threads need looking at: not the worker, not switched, not approved earlier with no
// selector entry since (the caller's membarrier orders these reads after any such entry).
// (*state_of)[i]: the state of tids[i], the target for those that need no look.
std::vector<pid_t> threads_to_look_at(const Pass &ps, const std::vector<pid_t> &tids,
                                      std::vector<int> *state_of) {
    const pid_t me = worker_tid();
    state_of->assign(tids.size(), 0);
    std::vector<pid_t> to_look;
    for (size_t i = 0; i < tids.size(); i++) {
        ThreadSlot *s = ps.slot_of(tids[i]);
        (*state_of)[i] = effective_state(s);
        if (tids[i] != me && (*state_of)[i] != ps.target && !(s && approval_holds(s, ps.epoch)))
            to_look.push_back(tids[i]);
        else
            (*state_of)[i] = ps.target;
    }
    return to_look;
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
    // Pairs with read_lock(): after it, a seq equal to an approval's means no selector entry
    // since the approval was given (approval_holds()).
    arch::membarrier_all();
    std::vector<int> state_of;
    const std::vector<pid_t> to_look = threads_to_look_at(ps, tids, &state_of);
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

}  // namespace graft
