// An ordinary entry rewritten and restored in a loop while threads stand at every instruction
// boundary of its first bytes (parked inside a signal handler, the case the write protocol of
// src/agent/process/entry_rewrite.hpp must wait out) and workers call it in tight loops:
// 0 crashes, 0 wrong results.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

void park_and_patch(const std::string &prog, bool under_graft) {
    Target t(prog_path(prog), {"3", "2"}, {}, under_graft);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    if (under_graft) {
        ASSERT_TRUE(t.wait_agent());
    }
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
    // bytes the jump covers (after `push %rbp` with gcc, after `push %r14` with clang; between
    // the jump layout's nops with gcc; clang's jump layout is one 5-byte nop, nothing inside).
    unsigned long mask = 0;
    long parks = 0;
    unsigned first = 0;
    ASSERT_EQ(std::sscanf(counts.c_str(), "scale %*d wrong 0 parks %ld offsets %lx calls %*d first %x",
                          &parks, &mask, &first),
              3)
        << counts;
    EXPECT_GT(parks, 0) << counts;
    EXPECT_TRUE(mask & 1) << counts;
    if (prog == "entry_park" || first == 0x90) {
        EXPECT_TRUE(mask & 0x1e) << counts;
    }
    if (prog == "entry_park_gate") {
        // endbr64, then the gate: parked on it, and on its second byte while it was gcc's `90 90`.
        EXPECT_TRUE(mask & (1ul << 4)) << counts;
    }
    EXPECT_EQ(loaded, rounds);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

}  // namespace

TEST(EntryParkStress, EntryRewrittenWhileThreadsStandInsideItsFirstBytes) {
    park_and_patch("entry_park", true);
}

// The jump layout's entry in a process graft attached to: gcc's five nops were not merged (threads
// ran them), so threads stand between them while graft writes the jmp over them.
TEST(EntryParkStress, JumpLayoutRewrittenAfterAttachWhileThreadsStandBetweenItsNops) {
    park_and_patch("entry_park_jump", false);
}

// graft's gate layout in a process graft attached to: gcc's `90 90` gate is merged into one nop
// while a parker stands on its second byte (parked there 300 ms at a time); the gate opens only
// once no thread does, or that thread would execute the displacement (`f4`, hlt, after endbr64).
TEST(EntryParkStress, GateMergedUnderAParkedThreadOpensOnlyOnceItLeft) {
    park_and_patch("entry_park_gate", false);
}
