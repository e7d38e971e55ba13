// The kernel's tools/testing/selftests/livepatch/test-sysfs.sh, ported (reference:
// kernel-livepatch.md 8.8 and 7): /sys/kernel/livepatch/<patch>/{enabled,transition,force,
// replace,stack_order} and <object>/patched are the fields of `graft list PID --json`.
// The kernel's test also checks the files' modes (-rw-r--r--, --w-------, ...); a command has
// no file modes, so in their place every case checks that `graft list PID` (text) says the same
// as `graft list PID --json`. The kernel's "force" file is write-only; graft reports whether a
// force marked the patch ("forced").
#include <gtest/gtest.h>

#include <sstream>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

nlohmann::json list_json(KlpSession &s) {
    Cmd c = graft_cmd({"list", std::to_string(s.pid()), "--json"});
    EXPECT_EQ(c.rc, 0) << c.err;
    try {
        return nlohmann::json::parse(c.out);
    } catch (const std::exception &e) {
        ADD_FAILURE() << "graft list --json: " << e.what() << "\n" << c.out;
        return nlohmann::json::object();
    }
}

nlohmann::json patch_of(const nlohmann::json &l, const std::string &name) {
    for (auto &p : l["patches"])
        if (p["name"] == name) return p;
    return nullptr;
}

nlohmann::json object_in(const nlohmann::json &p, const std::string &name) {
    if (!p.is_object()) return nullptr;
    for (auto &o : p["objects"])
        if (o["name"] == name) return o;
    return nullptr;
}

// `graft list PID` as it must read given `graft list PID --json` (idle: no transition).
std::string text_of(const nlohmann::json &l) {
    std::ostringstream os;
    auto b = [](const nlohmann::json &v) { return v.is_boolean() && v.get<bool>() ? "1" : "0"; };
    if (l["patches"].empty() && l["unloadable"].empty()) os << "no patches\n";
    for (auto &p : l["patches"]) {
        os << p["name"].get<std::string>() << "\tenabled=" << b(p["enabled"])
           << " transition=" << b(p["transition"]) << " replace=" << b(p["replace"])
           << " forced=" << b(p["forced"]) << " stack_order=" << p["stack_order"].get<int>() << "\n";
        for (auto &o : p["objects"])
            os << "  " << o["name"].get<std::string>() << "\tpatched=" << b(o["patched"]) << "\n";
    }
    for (auto &p : l["unloadable"])
        os << p["name"].get<std::string>() << "\tdisabled (unload with `graft unload`)"
           << (p.value("forced", false) ? ", forced: cannot be unloaded" : "") << "\n";
    return os.str();
}

// The text and the JSON views agree (the replacement for the kernel's file-mode checks).
void expect_views_agree(KlpSession &s) {
    nlohmann::json l = list_json(s);
    Cmd c = graft_cmd({"list", std::to_string(s.pid())});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.out, text_of(l)) << "graft list --json:\n" << l.dump(2);
}

std::string sysfs_enable_lines(const std::string &p) {
    return "% graft load " + p + ".so\ngraft: enabling patch '" + p + "'\ngraft: '" + p +
           "': initializing patching transition\ngraft: '" + p + "': starting patching transition\ngraft: '" +
           p + "': completing patching transition\ngraft: '" + p + "': patching complete\n";
}

std::string sysfs_disable_lines(const std::string &p) {
    return "% graft disable " + p + "\ngraft: '" + p + "': initializing unpatching transition\ngraft: '" + p +
           "': starting unpatching transition\ngraft: '" + p +
           "': completing unpatching transition\ngraft: '" + p + "': unpatching complete\n";
}

// 1. sysfs test: every field present, with the right type and value.
TEST(KlpSysfs, SysfsTest) {
    KlpSession s;
    s.load_lp("test_klp_livepatch");
    nlohmann::json p = patch_of(list_json(s), "test_klp_livepatch");
    ASSERT_TRUE(p.is_object()) << list_json(s).dump(2);
    ASSERT_TRUE(p["enabled"].is_boolean());
    EXPECT_TRUE(p["enabled"].get<bool>());
    ASSERT_TRUE(p["transition"].is_boolean());
    EXPECT_FALSE(p["transition"].get<bool>());
    ASSERT_TRUE(p["replace"].is_boolean());
    EXPECT_FALSE(p["replace"].get<bool>());
    ASSERT_TRUE(p["forced"].is_boolean());
    EXPECT_FALSE(p["forced"].get<bool>());
    ASSERT_TRUE(p["stack_order"].is_number_integer());
    EXPECT_EQ(p["stack_order"].get<int>(), 1);
    nlohmann::json main = object_in(p, "main");
    ASSERT_TRUE(main.is_object()) << p.dump(2);
    ASSERT_TRUE(main["patched"].is_boolean());
    EXPECT_TRUE(main["patched"].get<bool>());
    expect_views_agree(s);
    s.disable_lp("test_klp_livepatch");
    s.unload_lp("test_klp_livepatch");
    expect_views_agree(s);
    s.check(sysfs_enable_lines("test_klp_livepatch") + sysfs_disable_lines("test_klp_livepatch") +
            "% graft unload test_klp_livepatch\n");
}

// 2. sysfs test object/patched: the object's `patched` follows the target library as it loads
// and unloads (test_klp_sysfs_demo and test_klp_sysfs_mod stand for test_klp_callbacks_demo and
// test_klp_callbacks_mod). The transcript is test-callbacks case 4's.
TEST(KlpSysfs, ObjectPatched) {
    KlpSession s;
    auto patched = [&] {
        nlohmann::json o = object_in(patch_of(list_json(s), "test_klp_sysfs_demo"), "test_klp_sysfs_mod");
        EXPECT_TRUE(o.is_object() && o["patched"].is_boolean()) << o.dump();
        return o.is_object() && o["patched"].is_boolean() ? (o["patched"].get<bool>() ? 1 : 0) : -1;
    };
    s.load_lp("test_klp_sysfs_demo");
    EXPECT_EQ(patched(), 0);
    expect_views_agree(s);
    s.load_mod("test_klp_sysfs_mod");
    EXPECT_EQ(patched(), 1);
    EXPECT_EQ(ask(s.host(), "call test_klp_sysfs_mod test_klp_sysfs_mod_show", "call"),
              "ok call: test_klp_sysfs_demo: this has been live patched");
    expect_views_agree(s);
    s.unload_mod("test_klp_sysfs_mod");
    EXPECT_EQ(patched(), 0);
    expect_views_agree(s);
    s.disable_lp("test_klp_sysfs_demo");
    s.unload_lp("test_klp_sysfs_demo");
    s.check(R"(
% graft load test_klp_sysfs_demo.so
graft: enabling patch 'test_klp_sysfs_demo'
graft: 'test_klp_sysfs_demo': initializing patching transition
test_klp_sysfs_demo: pre_patch_callback: main
graft: 'test_klp_sysfs_demo': starting patching transition
graft: 'test_klp_sysfs_demo': completing patching transition
test_klp_sysfs_demo: post_patch_callback: main
graft: 'test_klp_sysfs_demo': patching complete
% dlopen test_klp_sysfs_mod.so
graft: applying patch 'test_klp_sysfs_demo' to loading object 'test_klp_sysfs_mod'
test_klp_sysfs_demo: pre_patch_callback: test_klp_sysfs_mod -> [MODULE_STATE_COMING] Full formed, running module_init
test_klp_sysfs_demo: post_patch_callback: test_klp_sysfs_mod -> [MODULE_STATE_COMING] Full formed, running module_init
test_klp_sysfs_mod: test_klp_sysfs_mod_init
% dlclose test_klp_sysfs_mod.so
test_klp_sysfs_mod: test_klp_sysfs_mod_exit
test_klp_sysfs_demo: pre_unpatch_callback: test_klp_sysfs_mod -> [MODULE_STATE_GOING] Going away
graft: reverting patch 'test_klp_sysfs_demo' on unloading object 'test_klp_sysfs_mod'
test_klp_sysfs_demo: post_unpatch_callback: test_klp_sysfs_mod -> [MODULE_STATE_GOING] Going away
% graft disable test_klp_sysfs_demo
graft: 'test_klp_sysfs_demo': initializing unpatching transition
test_klp_sysfs_demo: pre_unpatch_callback: main
graft: 'test_klp_sysfs_demo': starting unpatching transition
graft: 'test_klp_sysfs_demo': completing unpatching transition
test_klp_sysfs_demo: post_unpatch_callback: main
graft: 'test_klp_sysfs_demo': unpatching complete
% graft unload test_klp_sysfs_demo
)");
}

// 3. sysfs test replace enabled (test_klp_atomic_replace replace=1).
TEST(KlpSysfs, ReplaceEnabled) {
    KlpSession s;
    s.load_lp("test_klp_sysfs_replace1");
    nlohmann::json p = patch_of(list_json(s), "test_klp_sysfs_replace1");
    ASSERT_TRUE(p.is_object() && p["replace"].is_boolean()) << p.dump();
    EXPECT_TRUE(p["replace"].get<bool>());
    EXPECT_EQ(s.meminfo(), "test_klp_sysfs_replace1: this has been live patched");
    expect_views_agree(s);
    s.disable_lp("test_klp_sysfs_replace1");
    s.unload_lp("test_klp_sysfs_replace1");
    s.check(sysfs_enable_lines("test_klp_sysfs_replace1") + sysfs_disable_lines("test_klp_sysfs_replace1") +
            "% graft unload test_klp_sysfs_replace1\n");
}

// 4. sysfs test replace disabled (test_klp_atomic_replace replace=0).
TEST(KlpSysfs, ReplaceDisabled) {
    KlpSession s;
    s.load_lp("test_klp_sysfs_replace0");
    nlohmann::json p = patch_of(list_json(s), "test_klp_sysfs_replace0");
    ASSERT_TRUE(p.is_object() && p["replace"].is_boolean()) << p.dump();
    EXPECT_FALSE(p["replace"].get<bool>());
    EXPECT_EQ(s.meminfo(), "test_klp_sysfs_replace0: this has been live patched");
    expect_views_agree(s);
    s.disable_lp("test_klp_sysfs_replace0");
    s.unload_lp("test_klp_sysfs_replace0");
    s.check(sysfs_enable_lines("test_klp_sysfs_replace0") + sysfs_disable_lines("test_klp_sysfs_replace0") +
            "% graft unload test_klp_sysfs_replace0\n");
}

// 5. sysfs test stack_order value: 1, 2, 3 in load order; after the middle patch is disabled
// and unloaded, the last one becomes 2. The kernel's third patch is test_klp_syscall (getpid);
// here test_klp_livepatch, a patch for a function of the same host.
TEST(KlpSysfs, StackOrderValue) {
    KlpSession s;
    auto order = [&](const std::string &name) {
        nlohmann::json p = patch_of(list_json(s), name);
        EXPECT_TRUE(p.is_object() && p["stack_order"].is_number_integer()) << name << ": " << p.dump();
        return p.is_object() && p["stack_order"].is_number_integer() ? p["stack_order"].get<int>() : -1;
    };
    s.load_lp("test_klp_sysfs_replace0");
    EXPECT_EQ(order("test_klp_sysfs_replace0"), 1);
    s.load_lp("test_klp_sysfs_demo");
    EXPECT_EQ(order("test_klp_sysfs_demo"), 2);
    s.load_lp("test_klp_livepatch");
    EXPECT_EQ(order("test_klp_livepatch"), 3);
    expect_views_agree(s);
    s.disable_lp("test_klp_sysfs_demo");
    s.unload_lp("test_klp_sysfs_demo");
    EXPECT_EQ(order("test_klp_sysfs_replace0"), 1);
    EXPECT_EQ(order("test_klp_livepatch"), 2);
    expect_views_agree(s);
    s.disable_lp("test_klp_livepatch");
    s.unload_lp("test_klp_livepatch");
    s.disable_lp("test_klp_sysfs_replace0");
    s.unload_lp("test_klp_sysfs_replace0");
    s.check(sysfs_enable_lines("test_klp_sysfs_replace0") + R"(% graft load test_klp_sysfs_demo.so
graft: enabling patch 'test_klp_sysfs_demo'
graft: 'test_klp_sysfs_demo': initializing patching transition
test_klp_sysfs_demo: pre_patch_callback: main
graft: 'test_klp_sysfs_demo': starting patching transition
graft: 'test_klp_sysfs_demo': completing patching transition
test_klp_sysfs_demo: post_patch_callback: main
graft: 'test_klp_sysfs_demo': patching complete
)" + sysfs_enable_lines("test_klp_livepatch") +
            R"(% graft disable test_klp_sysfs_demo
graft: 'test_klp_sysfs_demo': initializing unpatching transition
test_klp_sysfs_demo: pre_unpatch_callback: main
graft: 'test_klp_sysfs_demo': starting unpatching transition
graft: 'test_klp_sysfs_demo': completing unpatching transition
test_klp_sysfs_demo: post_unpatch_callback: main
graft: 'test_klp_sysfs_demo': unpatching complete
% graft unload test_klp_sysfs_demo
)" + sysfs_disable_lines("test_klp_livepatch") +
            "% graft unload test_klp_livepatch\n" + sysfs_disable_lines("test_klp_sysfs_replace0") +
            "% graft unload test_klp_sysfs_replace0\n");
}

}  // namespace
