// The transition's per-thread decision, replayed over recorded inputs: /proc text as the kernel
// wrote it, and the facts a pass gathered of threads sleeping in a patched function, in an
// unrelated one, running, unreadable, gone, approved and then woken.
#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "agent/livepatch/thread_verdict.hpp"
#include "agent/proc/task_files.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- /proc text, as recorded on Debian 12 (6.1) ----

TEST(UnitTaskFiles, SyscallLineOfASleepingThreadGivesItsStackAndPc) {
    Frozen fz;
    ASSERT_EQ(parse_syscall(
                  "230 0x0 0x0 0x7ffd2a5256c0 0x7ffd2a525700 0x0 0x0 0x7ffd2a5256a8 0x7ff516e2a503\n", &fz),
              0);
    EXPECT_TRUE(fz.sleeping);
    EXPECT_EQ(fz.sp, 0x7ffd2a5256a8u);
    EXPECT_EQ(fz.pc, 0x7ff516e2a503u);
}

TEST(UnitTaskFiles, BlockedOutsideASystemCallAndRunning) {
    Frozen blocked;
    ASSERT_EQ(parse_syscall("-1 0x7ffc1b0fe0a8 0x55d0c2a01234\n", &blocked), 0);
    EXPECT_TRUE(blocked.sleeping);
    EXPECT_EQ(blocked.sp, 0x7ffc1b0fe0a8u);
    EXPECT_EQ(blocked.pc, 0x55d0c2a01234u);

    Frozen running;
    ASSERT_EQ(parse_syscall("running\n", &running), 0);
    EXPECT_FALSE(running.sleeping);

    Frozen bad;
    EXPECT_EQ(parse_syscall("garbage", &bad), EPROTO);
    EXPECT_EQ(parse_syscall("230", &bad), EPROTO);
}

TEST(UnitTaskFiles, StatusGivesContextSwitchesAndTheBlockedSignal) {
    char text[] =
        "Name:\tserver\nSigQ:\t0/94864\nSigPnd:\t0000000000000000\nSigBlk:\t0000000400010000\n"
        "voluntary_ctxt_switches:\t412\nnonvoluntary_ctxt_switches:\t113\n";
    Frozen fz;
    parse_status(text, 35, &fz);  // bit 34 of SigBlk is signal 35
    EXPECT_EQ(fz.voluntary, 412u);
    EXPECT_EQ(fz.ctx_switches, 525u);
    EXPECT_TRUE(fz.sig_blocked);

    char text2[] = "SigBlk:\t0000000000010000\nvoluntary_ctxt_switches:\t1\nnonvoluntary_ctxt_switches:\t0\n";
    Frozen fz2;
    parse_status(text2, 35, &fz2);
    EXPECT_FALSE(fz2.sig_blocked);
    EXPECT_EQ(fz2.ctx_switches, 1u);
}

TEST(UnitTaskFiles, SchedstatWithoutAccountingIsRefused) {
    unsigned long long cpu = 0, slices = 0;
    ASSERT_TRUE(parse_schedstat("241903436 209043019 525\n", &cpu, &slices));
    EXPECT_EQ(cpu, 241903436u);
    EXPECT_EQ(slices, 525u);
    EXPECT_FALSE(parse_schedstat("0 0 0\n", &cpu, &slices));
    EXPECT_FALSE(parse_schedstat("12 34", &cpu, &slices));
}

// ---- the verdict ----

ThreadFacts sleeping_with_state(StackVerdict v) {
    ThreadFacts f;
    f.sleeping = true;
    f.has_state = true;
    f.stable = true;
    f.seq = 42;
    f.stack.verdict = v;
    return f;
}

TEST(UnitThreadVerdict, SleepingInAPatchedFunctionStaysPendingNamingIt) {
    ThreadFacts f = sleeping_with_state(StackVerdict::kBusy);
    f.stack.busy_in = "price";
    ThreadVerdict v = judge_thread(101, f);
    EXPECT_EQ(v.kind, ThreadVerdict::kPending);
    EXPECT_EQ(v.reason, "sleeping on function price");
    EXPECT_FALSE(v.signal);
}

TEST(UnitThreadVerdict, SleepingInAnUnrelatedFunctionIsApproved) {
    ThreadVerdict v = judge_thread(101, sleeping_with_state(StackVerdict::kClean));
    EXPECT_EQ(v.kind, ThreadVerdict::kApprove);
    EXPECT_EQ(v.reason, "approved");
    EXPECT_FALSE(v.signal);
}

TEST(UnitThreadVerdict, ScheduledInDuringTheCheckCountsAsRunning) {
    ThreadFacts f = sleeping_with_state(StackVerdict::kClean);
    f.stable = false;
    ThreadVerdict v = judge_thread(101, f);
    EXPECT_EQ(v.kind, ThreadVerdict::kPending);
    EXPECT_EQ(v.reason, "running");
}

TEST(UnitThreadVerdict, UnreliableStacksStayPendingWithTheReason) {
    ThreadFacts f = sleeping_with_state(StackVerdict::kUnreliable);
    f.stack.why = "no unwind information";
    EXPECT_EQ(judge_thread(101, f).reason, "unreliable stack (no unwind information)");

    ThreadFacts in_selector = sleeping_with_state(StackVerdict::kClean);
    in_selector.seq = 43;  // odd: inside graft's selector
    ThreadVerdict v = judge_thread(101, in_selector);
    EXPECT_EQ(v.kind, ThreadVerdict::kPending);
    EXPECT_EQ(v.reason, "unreliable stack (inside graft's selector)");

    ThreadFacts unreadable;
    unreadable.read_err = EACCES;
    ThreadVerdict u = judge_thread(77, unreadable);
    EXPECT_EQ(u.kind, ThreadVerdict::kPending);
    EXPECT_EQ(u.reason, std::string("unreliable stack (cannot read /proc/self/task/77/syscall: ") +
                            std::strerror(EACCES) + ")");
}

TEST(UnitThreadVerdict, GoneThreadsLeaveTheReport) {
    ThreadFacts f;
    f.read_err = ESRCH;
    EXPECT_EQ(judge_thread(101, f).kind, ThreadVerdict::kGone);
    f.read_err = ENOENT;
    EXPECT_EQ(judge_thread(101, f).kind, ThreadVerdict::kGone);
    ThreadFacts status_vanished;
    status_vanished.status_ok = false;
    EXPECT_EQ(judge_thread(101, status_vanished).kind, ThreadVerdict::kGone);
}

TEST(UnitThreadVerdict, ThreadWithoutStateIsNamed) {
    ThreadFacts f;
    f.sleeping = true;
    ThreadVerdict v = judge_thread(101, f);
    EXPECT_EQ(v.kind, ThreadVerdict::kPending);
    EXPECT_EQ(v.reason, "no graft state yet (thread not started by pthread_create)");
}

TEST(UnitThreadVerdict, SignalRoundSignalsEveryPendingThreadUnlessItBlocksTheSignal) {
    ThreadFacts f = sleeping_with_state(StackVerdict::kBusy);
    f.stack.busy_in = "price";
    f.signal_round = true;
    ThreadVerdict v = judge_thread(101, f);
    EXPECT_TRUE(v.signal);
    EXPECT_EQ(v.reason, "sleeping on function price");

    f.sig_blocked = true;
    ThreadVerdict b = judge_thread(101, f);
    EXPECT_FALSE(b.signal);
    EXPECT_EQ(b.reason, "signal blocked");
}

TEST(UnitThreadVerdict, RunningThreadIsSignalledEarlyOnlyWhenCpuBound) {
    ThreadFacts f;  // running
    ThreadVerdict v = judge_thread(101, f);
    EXPECT_EQ(v.reason, "running");
    EXPECT_FALSE(v.signal);
    f.cpu_bound = true;
    EXPECT_TRUE(judge_thread(101, f).signal);
    f.sig_blocked = true;
    EXPECT_FALSE(judge_thread(101, f).signal);
}

// ---- running streaks ----

TEST(UnitRunningStreak, CpuBoundAfterThreePassesTwentyMsAndATickOfCpu) {
    RunningStreak s;
    const auto t0 = Clock::now();
    RunningSample x{10, true, 1'000'000'000ull, t0};
    EXPECT_FALSE(extend_running_streak(&s, x));
    x.now = t0 + 10ms;
    x.cpu_ns += 9'000'000;
    EXPECT_FALSE(extend_running_streak(&s, x));  // two passes
    x.now = t0 + 25ms;
    x.cpu_ns += 9'000'000;
    EXPECT_TRUE(extend_running_streak(&s, x));
}

TEST(UnitRunningStreak, AThreadThatOnlyWaitedForACpuIsNotCpuBound) {
    RunningStreak s;
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; i++) {
        RunningSample x{10, true, 1'000'000'000ull + 1000ull * i, t0 + i * 10ms};
        EXPECT_FALSE(extend_running_streak(&s, x)) << i;
    }
}

TEST(UnitRunningStreak, AThreadThatBlockedMeanwhileStartsANewStreak) {
    RunningStreak s;
    const auto t0 = Clock::now();
    unsigned long long cpu = 0;
    for (int i = 0; i < 3; i++)
        extend_running_streak(&s, RunningSample{10, true, cpu += 10'000'000, t0 + i * 15ms});
    // It slept and woke in between (a new voluntary switch): not CPU-bound, a streak restarts.
    EXPECT_FALSE(extend_running_streak(&s, RunningSample{11, true, cpu += 10'000'000, t0 + 45ms}));
    EXPECT_EQ(s.passes, 1);
    EXPECT_EQ(s.voluntary_at_start, 11u);
}

TEST(UnitRunningStreak, WithoutSchedstatNoThreadIsCpuBound) {
    RunningStreak s;
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; i++)
        EXPECT_FALSE(extend_running_streak(&s, RunningSample{10, false, 0, t0 + i * 20ms})) << i;
}

// ---- approvals: given, then the thread woke ----

TEST(UnitApproval, HoldsUntilTheThreadEntersTheSelector) {
    const uint32_t epoch = 7, seq = 42;
    uint64_t ap = make_approval(epoch, seq);
    EXPECT_TRUE(approval_valid(ap, seq, epoch));
    EXPECT_FALSE(approval_valid(ap, seq + 1, epoch));  // inside the selector now
    EXPECT_FALSE(approval_valid(ap, seq + 2, epoch));  // woke and left it: a new check is needed
    EXPECT_FALSE(approval_valid(ap, seq, epoch + 1));  // another transition
    EXPECT_FALSE(approval_valid(make_approval(epoch, 43), 43, epoch));  // given inside the selector
}

}  // namespace
}  // namespace graft
