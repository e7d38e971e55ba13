// User story: threads asleep under different kinds of frames are checked where they stand, each
// with the right verdict: a stack of ordinary frames by the worker's cached walk; a stack with a
// signal frame by libdwfl's walk, which the cached walk hands it to; and one under a frame whose
// CFA is %rbp-based and whose stack was grown by alloca (docs/design.md §4.5, §6.2). The cached
// walk climbs that frame when a callee saved %rbp (gcc's build of this program); when none did
// (clang's), its height cannot come from the code (alloca), libdwfl gets it and answers
// "unreliable" — either way such a thread is never approved.
// Released, each thread leaves its function and the transition completes.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

bool fp_verdict_ok(const std::string &r) {
    return r == "sleeping on function busy_fp" || r.rfind("unreliable stack (", 0) == 0;
}

const char *kPatch = "unwind_forms_fix";

std::string reason_of(const nlohmann::json &st, long tid) {
    if (st["transition"].is_null()) return "<no transition>";
    for (auto &p : st["transition"]["pending"])
        if (p["tid"] == tid) return p["reason"];
    return "<not pending>";
}

}  // namespace

TEST(UnwindForms, EachKindOfFrameGetsItsVerdict) {
    // No transition signal during the test: the verdicts are the stack checks' alone.
    Target t(prog_path("unwind_forms"), {}, {"GRAFT_SIGNAL_TIMEOUT=600", "GRAFT_DEBUG_UNWIND=1"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const long plain = tid_of(t, "plain parked tid ");
    const long fp = tid_of(t, "fp parked tid ");
    const long sig = tid_of(t, "signal parked tid ");
    ASSERT_GT(plain, 0) << t.all_output();
    ASSERT_GT(fp, 0) << t.all_output();
    ASSERT_GT(sig, 0) << t.all_output();

    Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    nlohmann::json last;
    bool seen = wait_status(
        t.pid(),
        [&](const nlohmann::json &st) {
            last = st;
            return reason_of(st, plain) == "sleeping on function busy_plain" &&
                   reason_of(st, sig) == "sleeping on function busy_sig" &&
                   fp_verdict_ok(reason_of(st, fp)) && st["transition"]["pending"].size() == 3;
        },
        30);
    ASSERT_TRUE(seen) << "plain: " << reason_of(last, plain) << "\nsignal: " << reason_of(last, sig)
                      << "\nfp: " << reason_of(last, fp) << "\n"
                      << last.dump(2);
    // Which walk answered (GRAFT_DEBUG_UNWIND prints one line per frame libdwfl walks): libdwfl
    // for the signal stack, the cached walk alone for the plain one.
    auto walked_by_libdwfl = [&](long tid) {
        for (auto &l : t.lines())
            if (l.rfind("graft-unwind: tid " + std::to_string(tid) + " frame ", 0) == 0) return true;
        return false;
    };
    EXPECT_TRUE(walked_by_libdwfl(sig)) << t.all_output();
    EXPECT_FALSE(walked_by_libdwfl(plain)) << t.all_output();
    // Several more passes keep the same verdicts (nothing was approved by mistake meanwhile).
    for (int i = 0; i < 3; i++) {
        nlohmann::json st = status(t.pid());
        EXPECT_EQ(reason_of(st, plain), "sleeping on function busy_plain") << st.dump(2);
        EXPECT_EQ(reason_of(st, sig), "sleeping on function busy_sig") << st.dump(2);
        EXPECT_TRUE(fp_verdict_ok(reason_of(st, fp))) << st.dump(2);
    }

    // Released one by one, each leaves its function; the last one completes the transition.
    for (const char *kind : {"plain", "signal", "fp"}) {
        size_t mark = t.line_count();
        t.send(std::string("release ") + kind + "\n");
        ASSERT_GE(t.wait_line(std::string(kind) + " left", 30, mark), 0) << t.all_output();
    }
    ASSERT_TRUE(wait_idle(t.pid())) << status(t.pid()).dump(2);
    bool complete = false;
    for (auto &l : log_lines(t.pid()))
        complete = complete || l == std::string("graft: '") + kPatch + "': patching complete";
    EXPECT_TRUE(complete) << ::testing::PrintToString(log_lines(t.pid()));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
