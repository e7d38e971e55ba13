// An ordinary entry rewritten and restored in a loop while threads stand at every instruction
// boundary of its first bytes (parked inside a signal handler, the case the write protocol of
// src/agent/process/entry_rewrite.hpp must wait out) and workers call it in tight loops:
// 0 crashes, 0 wrong results.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

TEST(EntryParkStress, EntryRewrittenWhileThreadsStandInsideItsFirstBytes) {
    Target t(prog_path("entry_park"), {"3", "2"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const int rounds = scaled(40, 6);
    int loaded = 0;
    for (int r = 0; r < rounds; r++) {
        Cmd load = graft_cmd({"load", pid, patch_path("entry_park_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << r << ": " << load.err << "\n" << target_state(t);
        loaded++;
        std::string now = ask(t, "tick", "scale ");
        ASSERT_EQ(now.rfind("scale 23 wrong 0 ", 0), 0u) << "round " << r << ": " << now;
        Cmd dis = graft_cmd({"disable", pid, "entry_park_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << "round " << r << ": " << dis.err << "\n" << target_state(t);
        now = ask(t, "tick", "scale ");
        ASSERT_EQ(now.rfind("scale 22 wrong 0 ", 0), 0u) << "round " << r << ": " << now;
        Cmd unl = graft_cmd({"unload", pid, "entry_park_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
    }
    auto counts = ask(t, "tick", "scale ");
    // The parkers did stand inside the entry: at its first byte, and at a boundary inside the 5
    // bytes the jump covers (after `push %rbp` with gcc, after `push %r14` with clang).
    unsigned long mask = 0;
    long parks = 0;
    ASSERT_EQ(std::sscanf(counts.c_str(), "scale %*d wrong 0 parks %ld offsets %lx", &parks, &mask), 2)
        << counts;
    EXPECT_GT(parks, 0) << counts;
    EXPECT_TRUE(mask & 1) << counts;
    EXPECT_TRUE(mask & 0x1e) << counts;
    EXPECT_EQ(loaded, rounds);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
