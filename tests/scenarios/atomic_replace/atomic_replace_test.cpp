// User story: a cumulative patch (replace = true) takes over from the patches before it, thread
// by thread (kernel: klp_add_nops, klp_unpatch_replaced_patches, klp_discard_nops). replace_a
// patches f1, replace_b f2; replace_r patches f1 and holder_fn only, so f2 gets a nop: a thread
// that switched runs the original f2, a thread still pending runs replace_b's. A "holder" thread
// parked in the original holder_fn keeps the transition pending for as long as the test wants.
#include <gtest/gtest.h>

#include <algorithm>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::vector<std::string> names(const nlohmann::json &list) {
    std::vector<std::string> v;
    for (auto &p : list) v.push_back(p["name"]);
    return v;
}

nlohmann::json entry(const nlohmann::json &list, const std::string &name) {
    for (auto &p : list)
        if (p["name"] == name) return p;
    return nullptr;
}

struct ReplaceHost {
    Target t{prog_path("replace_host")};
    pid_t pid;
    ReplaceHost() {
        EXPECT_GE(t.wait_line("ready"), 0) << target_state(t);
        EXPECT_TRUE(t.wait_agent()) << target_state(t);
        pid = t.pid();
    }
    std::string main_values() { return ask(t, "get", "main "); }
    std::string held_values() { return ask(t, "held", "held "); }
    void hold() { EXPECT_EQ(ask(t, "hold", "holding"), "holding"); }
    void release() { EXPECT_EQ(ask(t, "release", "released"), "released"); }
    void load(const std::string &patch, bool wait = true) {
        std::vector<std::string> args{"load", std::to_string(pid), patch_path(patch)};
        if (!wait) args.push_back("--no-wait");
        Cmd c = graft_cmd(args);
        ASSERT_EQ(c.rc, 0) << c.err;
    }
    // Loads replace_a and replace_b, parks the holder, and starts replace_r's transition.
    void start_replace() {
        load("replace_a");
        load("replace_b");
        ASSERT_EQ(main_values(), "main f1=1 f2=2");
        hold();
        load("replace_r", false);
        auto st = status(pid);
        ASSERT_TRUE(st["transition"].is_object()) << st.dump(2);
        ASSERT_EQ(st["transition"]["patch"], "replace_r") << st.dump(2);
    }
};

TEST(AtomicReplace, ThreadsMoveOneByOneAndReplacedPatchesLeave) {
    ReplaceHost h;
    h.start_replace();
    // The nop: replace_r lists f2 as a nop entry while its transition runs.
    auto st = status(h.pid);
    EXPECT_EQ(names(st["patches"]), (std::vector<std::string>{"replace_a", "replace_b", "replace_r"}));
    auto r = entry(st["patches"], "replace_r");
    ASSERT_FALSE(r.is_null());
    EXPECT_EQ(r["replace"], true);
    bool f2_nop = false;
    for (auto &f : r["objects"][0]["funcs"]) f2_nop |= f["name"] == "f2" && f["nop"] == true;
    EXPECT_TRUE(f2_nop) << r.dump(2);
    // The main thread switches at its next call: the new f1, the original f2. The holder, still
    // pending, keeps the older patches' versions of both.
    EXPECT_EQ(h.main_values(), "main f1=10 f2=0");
    EXPECT_EQ(h.held_values(), "held f1=1 f2=2");
    st = status(h.pid);
    EXPECT_EQ(st["transition"]["patch"], "replace_r") << st.dump(2);
    EXPECT_EQ(entry(st["patches"], "replace_a")["enabled"], true) << st.dump(2);

    h.release();
    ASSERT_TRUE(wait_idle(h.pid));
    st = status(h.pid);
    // Replaced patches left the list (stack_order renumbered), can be unloaded, and the nop is gone.
    EXPECT_EQ(names(st["patches"]), (std::vector<std::string>{"replace_r"})) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["stack_order"], 1);
    for (auto &f : st["patches"][0]["objects"][0]["funcs"]) EXPECT_EQ(f["nop"], false) << f.dump();
    EXPECT_EQ(st["patches"][0]["objects"][0]["funcs"].size(), 2u);
    auto un = names(st["unloadable"]);
    EXPECT_NE(std::find(un.begin(), un.end(), "replace_a"), un.end()) << st.dump(2);
    EXPECT_NE(std::find(un.begin(), un.end(), "replace_b"), un.end()) << st.dump(2);
    EXPECT_EQ(entry(st["unloadable"], "replace_a")["enabled"], false);
    EXPECT_EQ(h.main_values(), "main f1=10 f2=0");
    // The replaced patches never went through an unpatching transition of their own.
    for (auto &l : log_lines(h.pid)) {
        EXPECT_EQ(l.find("'replace_a': initializing unpatching"), std::string::npos) << l;
        EXPECT_EQ(l.find("'replace_b': initializing unpatching"), std::string::npos) << l;
    }
    // A replaced patch cannot come back by itself: it must be loaded again.
    Cmd c = graft_cmd({"enable", std::to_string(h.pid), "replace_a"});
    EXPECT_NE(c.rc, 0);
    EXPECT_EQ(
        c.err,
        "graft: enable: patch 'replace_a' was replaced by a cumulative patch; unload it and load it again: "
        "Invalid argument\n");
    c = graft_cmd({"unload", std::to_string(h.pid), "replace_a"});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.out + c.err, "");
    c = graft_cmd({"unload", std::to_string(h.pid), "replace_b"});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(h.main_values(), "main f1=10 f2=0");
    // Once replace_r is disabled, every function is back to its original code.
    c = graft_cmd({"disable", std::to_string(h.pid), "replace_r"});
    EXPECT_EQ(c.rc, 0) << c.err;
    ASSERT_TRUE(wait_idle(h.pid));
    EXPECT_EQ(h.main_values(), "main f1=0 f2=0");
    // A replaced patch can be loaded again (a "downgrade").
    h.load("replace_b");
    EXPECT_EQ(h.main_values(), "main f1=0 f2=2");
    h.t.send("quit\n");
    EXPECT_EQ(h.t.wait_exit(), 0);
}

TEST(AtomicReplace, ReversedReplaceLeavesTheOlderPatchesUntouched) {
    ReplaceHost h;
    h.start_replace();
    EXPECT_EQ(h.main_values(), "main f1=10 f2=0");
    Cmd c = graft_cmd({"disable", std::to_string(h.pid), "replace_r"});
    ASSERT_EQ(c.rc, 0) << c.err;
    ASSERT_TRUE(wait_idle(h.pid));
    auto st = status(h.pid);
    EXPECT_EQ(names(st["patches"]), (std::vector<std::string>{"replace_a", "replace_b"})) << st.dump(2);
    EXPECT_EQ(entry(st["patches"], "replace_a")["enabled"], true);
    EXPECT_EQ(entry(st["patches"], "replace_b")["stack_order"], 2);
    EXPECT_EQ(h.main_values(), "main f1=1 f2=2");
    EXPECT_EQ(h.held_values(), "held f1=1 f2=2");
    h.release();
    bool reversed = false;
    for (auto &l : log_lines(h.pid))
        reversed |= l == "graft: 'replace_r': reversing transition from patching to unpatching";
    EXPECT_TRUE(reversed);
    c = graft_cmd({"unload", std::to_string(h.pid), "replace_r"});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(h.main_values(), "main f1=1 f2=2");
    h.t.send("quit\n");
    EXPECT_EQ(h.t.wait_exit(), 0);
}

TEST(AtomicReplace, ForcedReplaceMarksTheReplacedPatches) {
    ReplaceHost h;
    h.start_replace();
    Cmd c = graft_cmd({"force", std::to_string(h.pid), "replace_r"});
    ASSERT_EQ(c.rc, 0) << c.err;
    ASSERT_TRUE(wait_idle(h.pid));
    // Forced: the holder now counts as switched although it still stands in the old holder_fn.
    EXPECT_EQ(h.held_values(), "held f1=10 f2=0");
    auto st = status(h.pid);
    EXPECT_EQ(names(st["patches"]), (std::vector<std::string>{"replace_r"})) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["forced"], false) << st.dump(2);
    EXPECT_EQ(entry(st["unloadable"], "replace_a")["forced"], true) << st.dump(2);
    EXPECT_EQ(entry(st["unloadable"], "replace_b")["forced"], true) << st.dump(2);
    // Their code may still run on the holder's stack: they stay loaded.
    c = graft_cmd({"unload", std::to_string(h.pid), "replace_a"});
    EXPECT_NE(c.rc, 0);
    EXPECT_NE(c.err.find("Device or resource busy"), std::string::npos) << c.err;
    h.release();
    h.t.send("quit\n");
    EXPECT_EQ(h.t.wait_exit(), 0);
}

}  // namespace
