// User story: a patch for a shared object that glibc loads by itself, not the program: the gconv
// module behind iconv (gconv_graft.so, charset GRAFTTEST). The patch is loaded before the first
// iconv_open, so the object does not exist yet; glibc's own dlopen of it applies the patch, and
// the very first conversion already goes through the new graft_map_char() (ASCII upper case).
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

const std::string kApply = "graft: applying patch 'gconv_fix' to loading object 'gconv_graft.so'";

}  // namespace

// Without a patch the module converts "abc" unchanged both ways: the module itself works.
TEST(Gconv, ModuleConvertsUnpatched) {
    Target t(prog_path("iconv_host"));
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    EXPECT_EQ(ask(t, "conv", "conv="), "conv=abc");
    EXPECT_EQ(ask(t, "rconv", "rconv="), "rconv=abc");
    EXPECT_EQ(ask(t, "conv", "conv="), "conv=abc");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

TEST(Gconv, PatchAppliedWhenGlibcLoadsTheModule) {
    Target t(prog_path("iconv_host"));
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());

    Cmd load = graft_cmd({"load", pid, patch_path("gconv_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    auto st = status(t.pid());
    EXPECT_EQ(st["objects_watched"], true) << st.dump(2);
    auto o = object_of(st, "gconv_fix", "gconv_graft.so");
    ASSERT_FALSE(o.is_null()) << st.dump(2);
    EXPECT_EQ(o["patched"], false) << st.dump(2);
    EXPECT_EQ(o["loaded"], false) << st.dump(2);
    for (auto &l : log_lines(t.pid())) EXPECT_EQ(l.find("loading object"), std::string::npos) << l;

    EXPECT_EQ(ask(t, "conv", "conv="), "conv=ABC")
        << "the first conversion, through the freshly loaded module";
    EXPECT_EQ(ask(t, "rconv", "rconv="), "rconv=ABC");
    st = status(t.pid());
    o = object_of(st, "gconv_fix", "gconv_graft.so");
    ASSERT_FALSE(o.is_null()) << st.dump(2);
    EXPECT_EQ(o["patched"], true) << st.dump(2);
    EXPECT_EQ(o["loaded"], true) << st.dump(2);
    std::vector<std::string> expected = {
        "graft: enabling patch 'gconv_fix'",
        "graft: 'gconv_fix': initializing patching transition",
        "graft: 'gconv_fix': starting patching transition",
        "graft: 'gconv_fix': completing patching transition",
        "graft: 'gconv_fix': patching complete",
        kApply,
    };
    EXPECT_EQ(log_lines(t.pid()), expected);

    // The module stays loaded: disabling is an ordinary unpatching transition.
    Cmd dis = graft_cmd({"disable", pid, "gconv_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(ask(t, "conv", "conv="), "conv=abc");
    EXPECT_EQ(ask(t, "rconv", "rconv="), "rconv=abc");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
