// User story: a program resets the transition signal to SIG_DFL (as code that resets every
// signal it does not know may do) while a transition waits for a thread. Signalling that thread
// would kill the process; graft sees that the handler is no longer its own, does not signal, says
// so in its log, and the transition can still be reversed.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

TEST(SignalReset, ThreadsAreNotSignalledWhenTheHandlerIsNotGrafts) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("stuck"), {}, {"GRAFT_SIGNAL_TIMEOUT=0.2"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(ask(t, "sigdfl", "handler reset"), "handler reset");
    t.send("hold A\n");
    ASSERT_GE(t.wait_line("holder A in hold v1"), 0) << t.all_output();

    Cmd load = graft_cmd({"load", pid, patch_path("stuck_fix"), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    // Past the signal timeout, a signal round would be due: graft logs instead of signalling.
    const std::string said =
        "graft: 'stuck_fix': the transition signal's handler is not graft's (the program changed it); "
        "pending "
        "threads are not signalled";
    bool logged = wait_status(
        t.pid(),
        [&](const nlohmann::json &) {
            for (auto &l : log_lines(t.pid()))
                if (l == said) return true;
            return false;
        },
        30);
    EXPECT_TRUE(logged);
    // Alive, and still in transition: holder-A is pending inside hold().
    auto st = status(t.pid());
    ASSERT_FALSE(st["transition"].is_null()) << st.dump();
    EXPECT_NE(ask(t, "ver", "version "), "<no answer to ver>") << target_state(t);

    Cmd dis = graft_cmd({"disable", pid, "stuck_fix", "--wait", "--timeout", "60"});
    EXPECT_EQ(dis.rc, 0) << dis.err;
    t.send("release\n");
    EXPECT_GE(t.wait_line("holder A left hold v1"), 0) << t.all_output();
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
