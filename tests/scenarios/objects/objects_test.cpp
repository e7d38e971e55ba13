// User story: a patch names a shared object the program loads and unloads at will (the kernel's
// klp_module_coming / klp_module_going, DESIGN.md 1 and 3.4). The patch is applied to the object
// as it loads, before its constructors run, removed as it unloads, after its destructors ran, and
// applied again when it comes back, as long as the patch is enabled; dlmopen namespaces too.
// Each test runs twice: under `graft run` (the audit module reports the objects) and on a process
// started without graft and attached to (the loader's debugger hook reports them).
// objects_host: a() in the executable, b() in objects_lib.so; objects_fix makes both return 1.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

const std::string kLib = "objects_lib.so";
const std::string kApply = "graft: applying patch 'objects_fix' to loading object 'objects_lib.so'";
const std::string kRevert = "graft: reverting patch 'objects_fix' on unloading object 'objects_lib.so'";

const std::vector<std::string> kEnableLines = {
    "graft: enabling patch 'objects_fix'",
    "graft: 'objects_fix': initializing patching transition",
    "graft: 'objects_fix': starting patching transition",
    "graft: 'objects_fix': completing patching transition",
    "graft: 'objects_fix': patching complete",
};
const std::vector<std::string> kDisableLines = {
    "graft: 'objects_fix': initializing unpatching transition",
    "graft: 'objects_fix': starting unpatching transition",
    "graft: 'objects_fix': completing unpatching transition",
    "graft: 'objects_fix': unpatching complete",
};

std::vector<std::string> concat(std::vector<std::vector<std::string>> parts) {
    std::vector<std::string> v;
    for (auto &p : parts) v.insert(v.end(), p.begin(), p.end());
    return v;
}

// Sends a command and returns every line printed for it: up to and including the first line
// that starts with `last` (or with "error:").
std::vector<std::string> command(Target &t, const std::string &cmd, const std::string &last) {
    size_t from = t.line_count();
    t.send(cmd + "\n");
    auto done = [&](const std::string &l) { return l.rfind(last, 0) == 0 || l.rfind("error:", 0) == 0; };
    t.wait_lines(
        [&](const std::vector<std::string> &l) {
            for (size_t i = from; i < l.size(); i++)
                if (done(l[i])) return true;
            return false;
        },
        30);
    auto l = t.lines();
    std::vector<std::string> v;
    for (size_t i = from; i < l.size(); i++) {
        v.push_back(l[i]);
        if (done(l[i])) break;
    }
    return v;
}

std::vector<std::string> v(std::initializer_list<std::string> l) {
    return l;
}

// objects_fix's entry for objects_lib.so says patched == loaded == `expected`, with b() listed.
void expect_lib_state(pid_t pid, bool expected, const std::string &when) {
    SCOPED_TRACE(when);
    auto st = status(pid);
    EXPECT_EQ(st["objects_watched"], true) << st.dump(2);
    auto o = object_of(st, "objects_fix", kLib);
    ASSERT_FALSE(o.is_null()) << st.dump(2);
    EXPECT_EQ(o["patched"], expected) << st.dump(2);
    EXPECT_EQ(o["loaded"], expected) << st.dump(2);
    ASSERT_EQ(o["funcs"].size(), 1u) << st.dump(2);
    EXPECT_EQ(o["funcs"][0]["name"], "b") << st.dump(2);
    auto m = object_of(st, "objects_fix", "main");
    ASSERT_FALSE(m.is_null()) << st.dump(2);
    EXPECT_EQ(m["patched"], true) << st.dump(2);
    EXPECT_EQ(m["loaded"], true) << st.dump(2);
}

void start(Target &t, bool attach) {
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    if (attach) {
        Cmd a = graft_cmd({"attach", std::to_string(t.pid())});
        ASSERT_EQ(a.rc, 0) << a.out << a.err;
    }
    ASSERT_TRUE(t.wait_agent());
}

// The agent's log without the two lines an attach adds first.
std::vector<std::string> agent_log(pid_t pid) {
    std::vector<std::string> out;
    for (auto &l : log_lines(pid))
        if (l.rfind("graft: attached to a running process", 0) != 0 &&
            l.find(" pthread_create call slot") == std::string::npos)
            out.push_back(l);
    return out;
}

void load_patch(Target &t) {
    Cmd load = graft_cmd({"load", std::to_string(t.pid()), patch_path("objects_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    EXPECT_NE(load.out.find("graft: 'objects_fix': patching complete"), std::string::npos) << load.out;
}

class ObjectsComeAndGo : public ::testing::TestWithParam<bool> {};  // true: attached

}  // namespace

INSTANTIATE_TEST_SUITE_P(, ObjectsComeAndGo, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) {
                             return i.param ? "Attached" : "GraftRun";
                         });

// (a) The patch is enabled while its library is not loaded; the library then comes (patched
// before its constructor runs), goes (unpatched after its destructor ran) and comes back.
TEST_P(ObjectsComeAndGo, PatchedBeforeConstructorsUnpatchedAfterDestructors) {
    Target t(prog_path("objects_host"), {}, {}, /*under_graft=*/!GetParam());
    start(t, GetParam());
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=none"}));
    load_patch(t);
    expect_lib_state(t.pid(), false, "enabled, library not loaded yet");
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=none"}));
    EXPECT_EQ(agent_log(t.pid()), kEnableLines);

    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"})) << "first load";
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    expect_lib_state(t.pid(), true, "after the first load");
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply}}));

    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"})) << "first unload";
    expect_lib_state(t.pid(), false, "after the first unload");
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=none"}));
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert}}));

    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"})) << "reload";
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    expect_lib_state(t.pid(), true, "after the reload");
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert, kApply}}));

    // Disabled with the library loaded: an ordinary unpatching transition takes b() back too.
    Cmd dis = graft_cmd({"disable", std::to_string(t.pid()), "objects_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=0", "unloaded"}));
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert, kApply}, kDisableLines}));

    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// (b) A patch disabled while its library is away is not applied when the library comes back.
TEST_P(ObjectsComeAndGo, DisabledWhileUnloadedIsNotApplied) {
    Target t(prog_path("objects_host"), {}, {}, /*under_graft=*/!GetParam());
    start(t, GetParam());
    load_patch(t);
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"}));
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"}));

    Cmd dis = graft_cmd({"disable", std::to_string(t.pid()), "objects_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=none"}));

    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=0", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=0", "unloaded"}));
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert}, kDisableLines}));

    // Unloaded, the patch is gone for good: the library loads unpatched again.
    Cmd unl = graft_cmd({"unload", std::to_string(t.pid()), "objects_fix"});
    ASSERT_EQ(unl.rc, 0) << unl.err;
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=0", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert}, kDisableLines}));

    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// (c) The library is loaded before the patch: the ordinary enable patches it; it then goes and
// comes back patched.
TEST_P(ObjectsComeAndGo, LoadedBeforeThePatch) {
    Target t(prog_path("objects_host"), {}, {}, /*under_graft=*/!GetParam());
    start(t, GetParam());
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=0", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    load_patch(t);
    expect_lib_state(t.pid(), true, "enabled with the library loaded");
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    EXPECT_EQ(agent_log(t.pid()), kEnableLines);

    for (int i = 0; i < 3; i++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"}));
        expect_lib_state(t.pid(), false, "unloaded");
        EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"}));
        EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
        expect_lib_state(t.pid(), true, "reloaded");
    }
    EXPECT_EQ(agent_log(t.pid()),
              concat({kEnableLines, {kRevert, kApply, kRevert, kApply, kRevert, kApply}}));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// (d) The library loaded in a new link-map namespace (dlmopen LM_ID_NEWLM) gets the patch too.
TEST_P(ObjectsComeAndGo, DlmopenNamespace) {
    Target t(prog_path("objects_host"), {}, {}, /*under_graft=*/!GetParam());
    start(t, GetParam());
    load_patch(t);
    EXPECT_EQ(command(t, "dlmopen", "loaded"), v({"ctor b=1", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    expect_lib_state(t.pid(), true, "loaded with dlmopen");
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"}));
    expect_lib_state(t.pid(), false, "unloaded from its namespace");
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert}}));

    // Again in a new namespace, then in the main one.
    EXPECT_EQ(command(t, "dlmopen", "loaded"), v({"ctor b=1", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"}));
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    EXPECT_EQ(agent_log(t.pid()), concat({kEnableLines, {kApply, kRevert, kApply, kRevert, kApply}}));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// (e) The kernel's module_going order: a patch's unpatch callbacks for an object that goes run
// after the object's destructors and before it is unmapped, so they may read its data. Attached,
// the loader's debugger interface does not say which objects a dlclose removes: graft watches
// the destructors of the objects it patches (their DT_FINI) and reports GOING at RT_DELETE. The
// library goes three times: loaded before the attach (found with dl_iterate_phdr), loaded after
// it, and loaded into a dlmopen namespace (found through its link_map); the patch is loaded anew
// each time (its GRAFT_REF is resolved when it loads).
TEST_P(ObjectsComeAndGo, UnpatchCallbacksReadTheObjectBeforeItIsUnmapped) {
    Target t(prog_path("objects_host"), {}, {}, /*under_graft=*/!GetParam());
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=0", "loaded"}));
    if (GetParam()) {
        Cmd a = graft_cmd({"attach", std::to_string(t.pid())});
        ASSERT_EQ(a.rc, 0) << a.out << a.err;
    }
    ASSERT_TRUE(t.wait_agent());
    std::vector<std::string> expected;
    for (std::string how : {"", "load", "dlmopen"}) {
        SCOPED_TRACE(how);
        if (!how.empty()) {
            EXPECT_EQ(command(t, how, "loaded"), v({"ctor b=0", "loaded"}));
        }
        Cmd load =
            graft_cmd({"load", std::to_string(t.pid()), patch_path("objects_going_fix"), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
        EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"})) << t.all_output();
        const std::string data = "objects_lib.so (going): objects_lib's data";
        const std::vector<std::string> going = {
            "objects_going_fix: pre_unpatch " + data,
            "graft: reverting patch 'objects_going_fix' on unloading object 'objects_lib.so'",
            "objects_going_fix: post_unpatch " + data,
        };
        std::vector<std::string> seen;
        for (auto &l : agent_log(t.pid()))
            if (l.find("objects_going_fix: p") != std::string::npos ||
                l.find("reverting") != std::string::npos)
                seen.push_back(l);
        expected.insert(expected.end(), going.begin(), going.end());
        EXPECT_EQ(seen, expected);
        EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=none"}));
        Cmd dis =
            graft_cmd({"disable", std::to_string(t.pid()), "objects_going_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
        Cmd unl = graft_cmd({"unload", std::to_string(t.pid()), "objects_going_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.out << unl.err;
    }
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// (f) The library built without graft's flags: b() has no patchable entry, so graft rewrites its
// own entry when the library comes (inside dlopen, before the constructor runs) and the library
// takes the rewritten bytes with it when it goes; it comes back patched again.
TEST(ObjectsPlain, OrdinaryEntryPatchedAsTheLibraryComesAndGoes) {
    Target t(prog_path("objects_host"), {"objects_plain_lib.so"});
    start(t, false);
    load_patch(t);
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=none"}));
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"})) << "first load";
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    expect_lib_state(t.pid(), true, "after the first load");
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=1", "unloaded"})) << "first unload";
    expect_lib_state(t.pid(), false, "after the first unload");
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=1", "loaded"})) << "reload";
    EXPECT_EQ(command(t, "call", "a="), v({"a=1 b=1"}));
    Cmd dis = graft_cmd({"disable", std::to_string(t.pid()), "objects_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    EXPECT_EQ(command(t, "unload", "unloaded"), v({"dtor b=0", "unloaded"}));
    // Loaded again with the patch disabled: its original entry, untouched.
    EXPECT_EQ(command(t, "load", "loaded"), v({"ctor b=0", "loaded"}));
    EXPECT_EQ(command(t, "call", "a="), v({"a=0 b=0"}));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
