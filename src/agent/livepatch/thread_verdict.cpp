#include "agent/livepatch/thread_verdict.hpp"

#include <cstring>

#include "agent/proc/task_files.hpp"

namespace graft {

bool extend_running_streak(RunningStreak *s, const RunningSample &x) {
    // A thread that blocked since the streak began (new voluntary context switches) but was
    // never seen asleep starts a new streak from here; had it kept the old one, it would wait
    // for the signal round (seen with a CPU-bound thread writing a file).
    if (s->passes > 0 && x.voluntary != s->voluntary_at_start) s->passes = 0;
    if (s->passes++ == 0) {
        s->voluntary_at_start = x.voluntary;
        s->cpu_ns_at_start = x.cpu_ns;
        s->start = x.now;
    }
    const auto wall = x.now - s->start;
    const auto ran = std::chrono::nanoseconds(static_cast<long long>(x.cpu_ns - s->cpu_ns_at_start));
    const bool cpu_bound = x.have_cpu && wall >= kCpuBoundMinStreak && ran >= kCpuBoundMinRun;
    return s->passes >= kCpuBoundMinPasses && cpu_bound && x.voluntary == s->voluntary_at_start;
}

ThreadVerdict judge_thread(pid_t tid, const ThreadFacts &f) {
    ThreadVerdict v;
    if (thread_gone(f.read_err)) {
        v.kind = ThreadVerdict::kGone;
        return v;
    }
    if (f.read_err) {
        // Not known to be gone: it stays pending (dropping it could complete the transition
        // with the thread still in the old functions).
        v.reason = "unreliable stack (cannot read /proc/self/task/" + std::to_string(tid) +
                   "/syscall: " + std::strerror(f.read_err) + ")";
        return v;
    }
    if (!f.status_ok) {
        v.kind = ThreadVerdict::kGone;  // its status file vanished between two reads
        return v;
    }
    if (!f.sleeping) {
        v.reason = "running";
        v.signal = f.cpu_bound && !f.sig_blocked;
    } else if (!f.has_state) {
        v.reason = "no graft state yet (thread not started by pthread_create)";
    } else if (!f.stable) {
        v.reason = "running";
    } else if (f.stack.verdict == StackVerdict::kBusy) {
        v.reason = std::string("sleeping on function ") + (f.stack.busy_in ? f.stack.busy_in : "?");
    } else if (f.stack.verdict == StackVerdict::kUnreliable) {
        v.reason = std::string("unreliable stack (") + (f.stack.why ? f.stack.why : "?") + ")";
    } else if (f.seq & 1) {
        v.reason = "unreliable stack (inside graft's selector)";
    } else {
        v.kind = ThreadVerdict::kApprove;
        v.reason = "approved";
    }
    if (f.signal_round) {
        // Past the signal timeout every thread not switched yet is signalled, unless the signal
        // is blocked: it would wait, and say why.
        if (!f.sig_blocked) v.signal = true;
        if (f.sig_blocked) v.reason = "signal blocked";
    }
    return v;
}

}  // namespace graft
