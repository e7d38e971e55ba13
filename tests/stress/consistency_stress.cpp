// Stress version of the consistency user story (tests/scenarios/consistency/consistency_test.cpp):
// load/disable/unload cycles of consistency_v2 while 8 threads run rounds of producer ->
// consumer -> printer; not one round may mix versions. 1000 cycles with GRAFT_STRESS_LONG=1,
// else 50.
#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>

#include "consistency_stats.hpp"
#include "harness.hpp"

using namespace graft::test;

namespace {

// Runs the cycles against t and checks that no round mixed versions, and that both versions
// ran; the caller quits t after its own checks.
void run_cycles(Target &t) {
    const int cycles = stress_long() ? 1000 : scaled(50, 15);
    const char *kPatch = "consistency_v2";
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    for (int i = 0; i < cycles; i++) {
        Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--timeout", "120"});
        ASSERT_EQ(load.rc, 0) << "cycle " << i << ": " << load.err;
        Cmd dis = graft_cmd({"disable", pid, kPatch, "--wait", "--timeout", "120"});
        ASSERT_EQ(dis.rc, 0) << "cycle " << i << ": " << dis.err;
        Cmd unl = graft_cmd({"unload", pid, kPatch});
        ASSERT_EQ(unl.rc, 0) << "cycle " << i << ": " << unl.err;
        if (i % 50 == 49) {
            Stats s = read_stats(t);
            ASSERT_EQ(s.mixed, 0) << "after cycle " << i << " of " << s.rounds << " rounds";
            ASSERT_EQ(s.bad, 0) << "after cycle " << i << " of " << s.rounds << " rounds";
        }
    }
    Stats end = read_stats(t);
    ASSERT_GE(end.rounds, 0) << t.all_output();
    EXPECT_EQ(end.mixed, 0) << "rounds " << end.rounds;
    EXPECT_EQ(end.bad, 0) << "rounds " << end.rounds;
    EXPECT_GT(end.v1, 0);
    EXPECT_GT(end.v2, 0);
    for (auto &l : t.lines())
        EXPECT_TRUE(l.find("MIXED") == std::string::npos && l.find("BAD") == std::string::npos) << l;
}

}  // namespace

TEST(ConsistencyStress, LoadDisableCyclesWithEightThreads) {
    Target t(prog_path("consistency"), {"workers", "8"});
    run_cycles(t);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// The same cycles with the read-ahead helper (src/agent/proc/read_ahead.hpp) on every pass that has
// a thread to look at (by default only from 64): the first reads of a thread's check happen on
// another thread, earlier than the walk; a thread that ran in between must still be seen
// running, never approved with a stale stack.
TEST(ConsistencyStress, ReadAheadOnEveryPassMixesNoRound) {
    Target t(prog_path("consistency"), {"workers", "8"}, {"GRAFT_READ_AHEAD=1"});
    run_cycles(t);
    if (HasFatalFailure()) return;
    // The helper did run, and did read threads' first looks (some passes had threads to look at).
    nlohmann::json st = status(t.pid());
    EXPECT_GT(st["read_ahead"]["passes"].get<uint64_t>(), 0u) << st.dump(2);
    EXPECT_GT(st["read_ahead"]["threads"].get<uint64_t>(), 0u) << st.dump(2);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
