// Stress: load/disable cycles of a patch that replaces two functions together (outer() calls
// inner()), while many threads call them. A thread must never see a mixed pair — outer() of one
// version calling inner() of the other — in any cycle, whether the transition completes or is
// reversed half way. ~200 cycles by default; GRAFT_STRESS_LONG=1 runs 5000, or as many as fit in
// 1000 s (the stress tests' ctest timeout is 1200 s) on a slow machine.
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>

#include <pthread.h>
#include <signal.h>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::map<std::string, long> stats(Target &t) {
    return ask_counts(t, "stats", "stats ");
}

}  // namespace

TEST(WrongVersionsStress, NoMixedVersionsOverLoadDisableCycles) {
    const int cycles = stress_long() ? 5000 : scaled(200, 20);
    const double budget = stress_long() ? 1000 : 1e9;
    const auto start = std::chrono::steady_clock::now();
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("wrong_versions"), {"8"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string patch = patch_path("wrong_versions_fix");
    ASSERT_EQ(ask(t, "tick", "outer "), "outer 1");
    auto s0 = stats(t);
    ASSERT_EQ(s0.count("mixed"), 1u) << t.all_output();

    int completed = 0, reversed_or_quick = 0;
    int done = 0;
    for (int i = 0; i < cycles; i++, done++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > budget) break;
        if (i % 2 == 0) {
            // A complete patching transition, then a complete unpatching one.
            Cmd load = graft_cmd({"load", pid, patch, "--timeout", "60"});
            ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
            ASSERT_EQ(ask(t, "tick", "outer "), "outer 2");
            Cmd dis = graft_cmd({"disable", pid, "wrong_versions_fix", "--wait", "--timeout", "60"});
            ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
            ASSERT_EQ(ask(t, "tick", "outer "), "outer 1");
            completed++;
        } else {
            // Disable right after the transition started: usually reversed half way.
            Cmd load = graft_cmd({"load", pid, patch, "--no-wait"});
            ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
            Cmd dis = graft_cmd({"disable", pid, "wrong_versions_fix", "--wait", "--timeout", "60"});
            ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
            reversed_or_quick++;
        }
        Cmd unl = graft_cmd({"unload", pid, "wrong_versions_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
        if (i % 50 == 49) {
            ASSERT_EQ(stats(t)["mixed"], 0) << "mixed versions seen by cycle " << i;
        }
    }
    auto s = stats(t);
    EXPECT_EQ(s["mixed"], 0) << "calls where outer() and inner() were of different versions";
    EXPECT_GT(s["calls"], s0["calls"]);
    EXPECT_GT(s["v1"], s0["v1"]);
    EXPECT_GT(s["v2"], s0["v2"]) << "the workers never ran the patched pair";
    EXPECT_EQ(ask(t, "tick", "outer "), "outer 1");
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    int reversals = 0;
    for (auto &l : log_lines(t.pid()))
        reversals += l.find("reversing transition from patching to unpatching") != std::string::npos;
    std::cout << "cycles: " << done << " of " << cycles << ": " << completed << " complete, "
              << reversed_or_quick << " disabled at once (" << reversals << " reversed half way); calls "
              << s["calls"] << " (v1 " << s["v1"] << ", v2 " << s["v2"] << ")" << std::endl;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// The same pair in a process started without graft and attached, whose workers are short-lived
// threads created through dlsym's pthread_create (no birth hook: no graft state at birth), each
// sleeping in a system call before its first call and between calls. The worker finds them
// blocked without a slot and offers them one while they wake, take it or claim their own
// (offer_slot): an approval given to an offer the thread did not take, or a thread running on two
// slots, would show as a mixed pair. ~100 cycles (2000 with GRAFT_STRESS_LONG=1).
TEST(WrongVersionsStress, NoMixedVersionsForThreadsOfferedSlotsWhereTheyBlock) {
    const int cycles = stress_long() ? 2000 : scaled(100, 10);
    const double budget = stress_long() ? 1000 : 1e9;
    const auto start = std::chrono::steady_clock::now();
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("wrong_versions"), {"8", "churn"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(graft_cmd({"attach", pid}).rc, 0);
    const std::string patch = patch_path("wrong_versions_fix");
    auto s0 = stats(t);
    int done = 0;
    for (int i = 0; i < cycles; i++, done++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > budget) break;
        Cmd load = graft_cmd({"load", pid, patch, "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
        ASSERT_EQ(ask(t, "tick", "outer "), "outer 2");
        Cmd dis = graft_cmd({"disable", pid, "wrong_versions_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
        ASSERT_EQ(graft_cmd({"unload", pid, "wrong_versions_fix"}).rc, 0) << target_state(t);
        if (i % 25 == 24) {
            ASSERT_EQ(stats(t)["mixed"], 0) << "mixed versions seen by cycle " << i;
        }
    }
    auto s = stats(t);
    EXPECT_EQ(s["mixed"], 0) << "calls where outer() and inner() were of different versions";
    EXPECT_GT(s["v2"], s0["v2"]) << "the workers never ran the patched pair";
    int signalled = 0;
    for (auto &l : log_lines(t.pid()))
        signalled += l.find("signaling remaining threads") != std::string::npos;
    std::cout << "cycles: " << done << " of " << cycles << "; calls " << s["calls"] << " (v1 " << s["v1"]
              << ", v2 " << s["v2"] << "); signal rounds " << signalled << std::endl;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// The same pair, with the transition held open by two threads blocked in park() (the patch
// replaces it too), one in each version: every `graft disable` and `graft enable` then reverses a live
// transition while the workers check their own stacks at every call. A worker must never pair the new target
// with the forbidden set of the old one (or the reverse): switched that way in the middle of outer(), it
// would run the other version's inner(). 300 reversals each way (3000 with GRAFT_STRESS_LONG=1).
TEST(WrongVersionsStress, NoMixedVersionsOverReversals) {
    const int rounds = stress_long() ? 3000 : scaled(300, 30);
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("wrong_versions"), {"8"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string name = "wrong_versions_park_fix";
    t.send("park\n");
    ASSERT_GE(t.wait_line("parked"), 0);
    Cmd load = graft_cmd({"load", pid, patch_path(name), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    // The second parked thread switches at park()'s entry and blocks in the new version.
    t.send("park\n");
    ASSERT_GE(t.wait_line("parked"), 0);
    auto st = status(t.pid());
    ASSERT_FALSE(st["transition"].is_null()) << "the parked threads should hold the transition open\n"
                                             << st.dump(2);
    for (int i = 0; i < rounds; i++) {
        SCOPED_TRACE("round " + std::to_string(i));
        Cmd dis = graft_cmd({"disable", pid, name});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
        Cmd en = graft_cmd({"enable", pid, name});
        ASSERT_EQ(en.rc, 0) << en.out << en.err << target_state(t);
        if (i % 50 == 49) {
            ASSERT_EQ(stats(t)["mixed"], 0) << "mixed versions seen by round " << i;
        }
    }
    int reversals = 0;
    for (auto &l : log_lines(t.pid()))
        reversals += l.find("': reversing transition from ") != std::string::npos;
    EXPECT_EQ(reversals, 2 * rounds) << "every disable and enable should have reversed the transition";
    // Released, the parked threads leave park() and the transition completes.
    t.send("unpark\n");
    ASSERT_GE(t.wait_line("unparked"), 0);
    Cmd dis = graft_cmd({"disable", pid, name, "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
    Cmd unl = graft_cmd({"unload", pid, name});
    ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
    auto s = stats(t);
    EXPECT_EQ(s["mixed"], 0) << "calls where outer() and inner() were of different versions";
    EXPECT_GT(s["v2"], 0) << "the workers never ran the patched pair";
    EXPECT_EQ(ask(t, "tick", "outer "), "outer 1");
    std::cout << "reversals: " << reversals << "; calls " << s["calls"] << " (v1 " << s["v1"] << ", v2 "
              << s["v2"] << ")" << std::endl;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
