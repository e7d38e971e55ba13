// User story: a program's signal handler calls a patched function. Another thread sends the
// signal in a tight loop, to threads that are themselves inside the patched functions and to a
// thread sleeping in sigsuspend(), all through 30 (GRAFT_STRESS_LONG=1: 100) load/disable transitions of a
// patch that replaces two functions together. Every result the handler (and the interrupted loops) compute is
// that of one version, and the program never crashes.
#include <iostream>
#include <map>
#include <sstream>

#include <pthread.h>
#include <signal.h>

#include <gtest/gtest.h>

#include <cstdlib>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::map<std::string, long> stats(Target &t) {
    return ask_counts(t, "stats", "stats ");
}

}  // namespace

TEST(SignalHandler, HandlerCallingPatchedFunctionDuringTransitions) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("signal_handler"));
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string patch = patch_path("signal_handler_fix");
    ASSERT_EQ(ask(t, "tick", "compute "), "compute 22");
    auto s0 = stats(t);
    ASSERT_EQ(s0.size(), 8u) << t.all_output();

    // 30 transitions in CI; GRAFT_STRESS_LONG=1 for 100 (each takes ~0.5-1 s: the sender
    // thread keeps one CPU busy).
    const int cycles = stress_long() ? 100 : scaled(30, 8);
    for (int i = 0; i < cycles; i++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        Cmd load = graft_cmd({"load", pid, patch, "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
        ASSERT_EQ(ask(t, "tick", "compute "), "compute 37");
        Cmd dis = graft_cmd({"disable", pid, "signal_handler_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
        ASSERT_EQ(ask(t, "tick", "compute "), "compute 22");
        Cmd unl = graft_cmd({"unload", pid, "signal_handler_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
        if (i % 25 == 24) {
            auto s = stats(t);
            ASSERT_EQ(s["h_bad"], 0) << "a handler saw mixed versions by cycle " << i;
            ASSERT_EQ(s["loop_bad"], 0) << "a loop saw mixed versions by cycle " << i;
        }
    }
    auto s = stats(t);
    EXPECT_EQ(s["h_bad"], 0) << "handler results of no version";
    EXPECT_EQ(s["loop_bad"], 0) << "loop results of no version";
    EXPECT_GT(s["handled"] - s0["handled"], 1000) << "the handler hardly ran";
    EXPECT_GT(s["h_v1"], s0["h_v1"]);
    EXPECT_GT(s["h_v2"], s0["h_v2"]) << "no handler ever ran the patch";
    EXPECT_GT(s["loop_v2"], s0["loop_v2"]);
    EXPECT_EQ(s["h_v1"] + s["h_v2"] + s["h_bad"], s["handled"]);
    std::cout << "signals sent " << s["sent"] << ", handled " << s["handled"] << " (v1 " << s["h_v1"]
              << ", v2 " << s["h_v2"] << "); loop calls v1 " << s["loop_v1"] << ", v2 " << s["loop_v2"]
              << std::endl;
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << "the program did not survive: " << t.all_output();
}
