// User story: a patched program execs another program. The new image starts clean: none of the
// old image's patches, none of its log; under `graft run` it has an agent again, at the same
// pid, which patches the new program like any other.
// exec_host: f() (0; exec_fix: 1) execs exec_target: f() (0; exec_target_fix: 2).
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

TEST(Exec, NewImageStartsCleanWithAnAgent) {
    Target t(prog_path("exec_host"));
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    EXPECT_EQ(ask(t, "call", "f="), "f=0");
    Cmd load = graft_cmd({"load", pid, patch_path("exec_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    EXPECT_EQ(ask(t, "call", "f="), "f=1");

    EXPECT_EQ(ask(t, "exec", "exec"), "exec_target ready " + pid + " f=0")
        << "the new image runs its own f(), unpatched";
    ASSERT_TRUE(t.wait_agent()) << "no agent answers for the new image";
    auto st = status(t.pid());
    EXPECT_EQ(st["pid"], t.pid()) << st.dump(2);
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    EXPECT_TRUE(st["transition"].is_null()) << st.dump(2);
    EXPECT_EQ(st["objects_watched"], true) << st.dump(2);
    auto log = log_lines(t.pid());
    for (auto &l : log) EXPECT_EQ(l.find("exec_fix"), std::string::npos) << "the old image's log: " << l;
    EXPECT_TRUE(log.empty()) << "the new image's log is not empty: " << log.front();
    EXPECT_EQ(ask(t, "call", "f="), "f=0");

    // The old image's patch does not fit the new image (its build-id is exec_host's).
    Cmd stale = graft_cmd({"load", pid, patch_path("exec_fix"), "--timeout", "60"});
    EXPECT_NE(stale.rc, 0) << stale.out;
    EXPECT_NE(stale.err.find("build-id mismatch"), std::string::npos) << stale.err;

    Cmd load2 = graft_cmd({"load", pid, patch_path("exec_target_fix"), "--timeout", "60"});
    ASSERT_EQ(load2.rc, 0) << load2.out << load2.err << target_state(t);
    EXPECT_EQ(ask(t, "call", "f="), "f=2");
    st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["name"], "exec_target_fix") << st.dump(2);
    EXPECT_EQ(st["patches"][0]["stack_order"], 1) << st.dump(2);
    std::vector<std::string> expected = {
        "graft: enabling patch 'exec_target_fix'",
        "graft: 'exec_target_fix': initializing patching transition",
        "graft: 'exec_target_fix': starting patching transition",
        "graft: 'exec_target_fix': completing patching transition",
        "graft: 'exec_target_fix': patching complete",
    };
    EXPECT_EQ(log_lines(t.pid()), expected) << "(a refused patch logs nothing)";
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
