// User story: patch a running multi-threaded program, see the new behaviour, disable it, see the
// old behaviour again, unload it.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

TEST(Basic, LoadDisableUnload) {
    Target t(prog_path("basic"), {"4"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    t.send("tick\n");
    ASSERT_GE(t.wait_line("greet 1"), 0) << t.all_output();

    Cmd load = graft_cmd({"load", pid, patch_path("basic_fix")});
    ASSERT_EQ(load.rc, 0) << load.err;
    EXPECT_NE(load.out.find("graft: 'basic_fix': patching complete"), std::string::npos) << load.out;
    size_t from = t.line_count();
    t.send("tick\n");
    ASSERT_GE(t.wait_line("greet 2", 30, from), 0) << t.all_output();

    auto st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u);
    EXPECT_EQ(st["patches"][0]["name"], "basic_fix");
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_EQ(st["patches"][0]["transition"], false);
    EXPECT_EQ(st["patches"][0]["objects"][0]["patched"], true);
    EXPECT_EQ(st["patches"][0]["objects"][0]["funcs"][0]["entry"], "patchable");
    for (auto &th : threads(t.pid())) {
        EXPECT_EQ(th["patch_state"], -1) << th.dump();
        EXPECT_EQ(th["pending"], false);
    }

    Cmd dis = graft_cmd({"disable", pid, "basic_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    from = t.line_count();
    t.send("tick\n");
    ASSERT_GE(t.wait_line("greet 1", 30, from), 0) << t.all_output();

    Cmd unl = graft_cmd({"unload", pid, "basic_fix"});
    ASSERT_EQ(unl.rc, 0) << unl.err;
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty());
    EXPECT_TRUE(st["unloadable"].empty());

    std::vector<std::string> expected = {
        "graft: enabling patch 'basic_fix'",
        "graft: 'basic_fix': initializing patching transition",
        "graft: 'basic_fix': starting patching transition",
        "graft: 'basic_fix': completing patching transition",
        "graft: 'basic_fix': patching complete",
        "graft: 'basic_fix': initializing unpatching transition",
        "graft: 'basic_fix': starting unpatching transition",
        "graft: 'basic_fix': completing unpatching transition",
        "graft: 'basic_fix': unpatching complete",
    };
    EXPECT_EQ(log_lines(t.pid()), expected);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
