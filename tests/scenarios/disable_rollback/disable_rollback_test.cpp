// User story: an operator disables a patch in a service whose code pages can no longer be made
// writable (here: a seccomp filter like systemd's MemoryDenyWriteExecute=, installed after the
// patch was loaded through a graft-built entry's gate, whose stores need a writable page: a
// process locked from the start gets ordinary entries instead, tests/scenarios/mdwe/). The
// unpatching transition cannot start. graft says so in one line, and the
// patch is left as before the request: enabled, still running, its callbacks having seen
// pre_unpatch followed by post_patch (as at the end of an unpatching transition that the kernel
// reverses), never post_unpatch.
#include <gtest/gtest.h>

#include <sstream>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::vector<std::string> callbacks_since(Target &t, size_t from) {
    std::vector<std::string> v;
    auto lines = t.lines();
    for (size_t i = from; i < lines.size(); i++)
        if (lines[i].rfind("callback ", 0) == 0) v.push_back(lines[i].substr(9));
    return v;
}

}  // namespace

TEST(DisableRollback, TransitionThatCannotStartLeavesThePatchEnabled) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("deny_wx"));
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    EXPECT_EQ(ask(t, "tick", "value "), "value 1");

    size_t mark = t.line_count();
    Cmd load = graft_cmd({"load", pid, patch_path("deny_wx_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_EQ(ask(t, "tick", "value "), "value 2");
    EXPECT_EQ(callbacks_since(t, mark), (std::vector<std::string>{"pre_patch", "post_patch"}));

    ASSERT_EQ(ask(t, "deny", "denied"), "denied") << t.all_output();

    mark = t.line_count();
    Cmd dis = graft_cmd({"disable", pid, "deny_wx_fix"});
    EXPECT_NE(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(split_lines(dis.err).size(), 1u) << dis.err;
    EXPECT_EQ(dis.err.rfind("graft: disable: ", 0), 0u) << dis.err;
    EXPECT_NE(dis.err.find("patch 'deny_wx_fix'"), std::string::npos) << dis.err;
    // The gate was opened while code could be made writable; closing it is a 2-byte store (its
    // prefix's pointer an 8-byte one), which /proc/self/mem cannot make atomic.
    EXPECT_NE(dis.err.find("code pages may not be made writable here (MDWE, a seccomp filter or an LSM: "
                           "Operation not permitted), and the "),
              std::string::npos)
        << dis.err;
    EXPECT_NE(dis.err.find(" bytes at once, which only a writable page does atomically"), std::string::npos)
        << dis.err;

    // The patch is as before the request: enabled, no transition, its object patched, the new
    // code running.
    auto st = status(t.pid());
    EXPECT_TRUE(st["transition"].is_null()) << st.dump();
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump();
    EXPECT_EQ(st["patches"][0]["enabled"], true) << st.dump();
    EXPECT_EQ(st["patches"][0]["objects"][0]["patched"], true) << st.dump();
    EXPECT_TRUE(st["refusing"].is_null()) << st.dump();
    EXPECT_EQ(ask(t, "tick", "value "), "value 2");
    // The callbacks' view: pre_unpatch ran, so post_patch runs again; never post_unpatch.
    EXPECT_EQ(callbacks_since(t, mark), (std::vector<std::string>{"pre_unpatch", "post_patch"}));
    auto log = log_lines(t.pid());
    bool said = false;
    for (auto &l : log) said |= l == "graft: 'deny_wx_fix': the unpatching transition could not start";
    EXPECT_TRUE(said) << "no 'could not start' line in the log";

    // A second attempt is refused the same way and leaves the same state.
    mark = t.line_count();
    Cmd again = graft_cmd({"disable", pid, "deny_wx_fix"});
    EXPECT_NE(again.rc, 0);
    EXPECT_EQ(ask(t, "tick", "value "), "value 2");
    EXPECT_EQ(callbacks_since(t, mark), (std::vector<std::string>{"pre_unpatch", "post_patch"}));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
