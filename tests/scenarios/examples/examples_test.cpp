// User story: a patch author copies one of examples/ and follows its README. Each test copies an
// example directory to a temporary directory, builds it there with its own Makefile and this
// build's `graft` (make GRAFT=... CC=cc), runs the program under `graft run`, drives the patches
// with the `graft` command exactly as the README does, and checks what the program prints and the
// agent's log. No kernel selftest is ported here; the shadow, callbacks, cumulative and state
// examples follow the kernel's samples/livepatch/livepatch-shadow-fix1/fix2, test_klp_callbacks_*,
// test_klp_atomic_replace and test_klp_state/state2 (kernel-livepatch.md sections 4-6, 8.4, 8.6).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "harness.hpp"

using namespace graft::test;
namespace fs = std::filesystem;

namespace {

// An example directory copied to a fresh temporary directory and built there with its Makefile.
class Example {
  public:
    explicit Example(const std::string &name) {
        std::string tmpl = (fs::temp_directory_path() / ("graft-example-" + name + "-XXXXXX")).string();
        if (!mkdtemp(tmpl.data())) return;
        dir_ = tmpl;
        std::error_code ec;
        fs::copy(fs::path(GRAFT_TEST_SOURCE_DIR) / ".." / "examples" / name, dir_,
                 fs::copy_options::recursive, ec);
        if (ec) {
            make_ = {-1, "", "copy: " + ec.message()};
            return;
        }
        make_ = run({"make", "-C", dir_, "GRAFT=" + graft_bin(), "CC=cc"}, 300);
    }
    ~Example() {
        std::error_code ec;
        if (!dir_.empty()) fs::remove_all(dir_, ec);
    }
    Example(const Example &) = delete;
    Example &operator=(const Example &) = delete;

    bool built() const { return !dir_.empty() && make_.rc == 0; }
    std::string make_output() const { return make_.out + make_.err; }
    std::string file(const std::string &name) const { return dir_ + "/" + name; }

  private:
    std::string dir_;
    Cmd make_;
};

std::vector<std::string> listed_patch_names(const nlohmann::json &list) {
    std::vector<std::string> v;
    for (auto &p : list) v.push_back(p["name"]);
    return v;
}

// The log lines of enabling patch P (ENA(P) in kernel-livepatch.md 8.2), with `inside` lines
// where the callbacks print: pre_patch after "initializing", post_patch after "completing".
std::vector<std::string> enable_lines(const std::string &p, const std::vector<std::string> &pre = {},
                                      const std::vector<std::string> &post = {}) {
    std::vector<std::string> v{"graft: enabling patch '" + p + "'",
                               "graft: '" + p + "': initializing patching transition"};
    v.insert(v.end(), pre.begin(), pre.end());
    v.push_back("graft: '" + p + "': starting patching transition");
    v.push_back("graft: '" + p + "': completing patching transition");
    v.insert(v.end(), post.begin(), post.end());
    v.push_back("graft: '" + p + "': patching complete");
    return v;
}

// The log lines of disabling patch P (DIS(P)): pre_unpatch lines after "initializing",
// post_unpatch lines after "completing".
std::vector<std::string> disable_lines(const std::string &p, const std::vector<std::string> &pre = {},
                                       const std::vector<std::string> &post = {}) {
    std::vector<std::string> v{"graft: '" + p + "': initializing unpatching transition"};
    v.insert(v.end(), pre.begin(), pre.end());
    v.push_back("graft: '" + p + "': starting unpatching transition");
    v.push_back("graft: '" + p + "': completing unpatching transition");
    v.insert(v.end(), post.begin(), post.end());
    v.push_back("graft: '" + p + "': unpatching complete");
    return v;
}

void append(std::vector<std::string> &to, const std::vector<std::string> &lines) {
    to.insert(to.end(), lines.begin(), lines.end());
}

std::string joined(const std::vector<std::string> &v) {
    std::string s;
    for (auto &l : v) s += l + "\n";
    return s;
}

Cmd load(Target &t, const std::string &so) {
    return graft_cmd({"load", std::to_string(t.pid()), so, "--timeout", "60"});
}
Cmd disable(Target &t, const std::string &name) {
    return graft_cmd({"disable", std::to_string(t.pid()), name, "--wait", "--timeout", "60"});
}
Cmd unload(Target &t, const std::string &name) {
    return graft_cmd({"unload", std::to_string(t.pid()), name});
}

}  // namespace

// examples/basic: fix_convert.so replaces celsius_to_fahrenheit() of a server whose four worker
// threads call it all the time.
TEST(Examples, Basic) {
    Example ex("basic");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("server"));
    ASSERT_GE(t.wait_line("ready"), 0) << target_state(t);
    ASSERT_TRUE(t.wait_agent());

    EXPECT_EQ(ask(t, "convert 100", " C = "), "100 C = 203 F");
    Cmd l = load(t, ex.file("fix_convert.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "convert 100", " C = "), "100 C = 212 F");
    EXPECT_EQ(ask(t, "convert -40", " C = "), "-40 C = -40 F");
    auto st = status(t.pid());
    EXPECT_EQ(listed_patch_names(st["patches"]), std::vector<std::string>{"fix_convert"}) << st.dump(2);
    // The workers kept serving through the transition.
    std::string served = ask(t, "stats", "served ");
    EXPECT_GT(std::atol(served.c_str() + std::string("served ").size()), 0) << served;

    Cmd d = disable(t, "fix_convert");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "convert 100", " C = "), "100 C = 203 F");
    Cmd u = unload(t, "fix_convert");
    ASSERT_EQ(u.rc, 0) << u.err;
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);

    std::vector<std::string> expected = enable_lines("fix_convert");
    append(expected, disable_lines("fix_convert"));
    EXPECT_EQ(joined(log_lines(t.pid())), joined(expected));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// examples/static_ref: fix_pears.so replaces the second of two static discount() functions
// (old_sympos 2) and reads a static variable through GRAFT_REF. shop prints a line a second and
// reads no commands, so each check waits for the first line showing the new prices.
TEST(Examples, StaticRef) {
    Example ex("static_ref");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("shop"));
    ASSERT_GE(t.wait_line("apple 900  pear 975"), 0) << t.all_output() << target_state(t);
    ASSERT_TRUE(t.wait_agent());

    Cmd l = load(t, ex.file("fix_pears.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    // A line computed just before the transition completed may still arrive: wait for the new one.
    ASSERT_GE(t.wait_line("apple 900  pear 750", 30, t.line_count()), 0) << t.all_output();
    Cmd d = disable(t, "fix_pears");
    ASSERT_EQ(d.rc, 0) << d.err;
    ASSERT_GE(t.wait_line("apple 900  pear 975", 30, t.line_count()), 0) << t.all_output();
    Cmd u = unload(t, "fix_pears");
    ASSERT_EQ(u.rc, 0) << u.err;

    std::vector<std::string> expected = enable_lines("fix_pears", {}, {"fix_pears: pears now 25% off"});
    append(expected, disable_lines("fix_pears"));
    EXPECT_EQ(joined(log_lines(t.pid())), joined(expected));
}

// examples/shadow: fix_quota.so limits each session to 3 messages, counting them in a shadow
// variable per struct session (kernel samples livepatch-shadow-fix1/fix2).
TEST(Examples, Shadow) {
    Example ex("shadow");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("sessions"));
    ASSERT_GE(t.wait_line("ready"), 0) << target_state(t);
    ASSERT_TRUE(t.wait_agent());

    // The bug: no limit.
    EXPECT_EQ(ask(t, "open alice", "session "), "session 1 opened for alice");
    for (const char *m : {"a", "b", "c", "d"})
        EXPECT_EQ(ask(t, std::string("send 1 ") + m, "session 1"), std::string("session 1: sent ") + m);

    Cmd l = load(t, ex.file("fix_quota.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    // A session opened after the patch: its counter is created on its first message.
    EXPECT_EQ(ask(t, "open bob", "session "), "session 2 opened for bob");
    for (const char *m : {"m1", "m2", "m3"})
        EXPECT_EQ(ask(t, std::string("send 2 ") + m, "session 2"), std::string("session 2: sent ") + m);
    EXPECT_EQ(ask(t, "send 2 m4", "session 2"), "session 2: limit reached");
    // A session opened before the patch gets its counter the same way, and counts from the patch on.
    for (const char *m : {"e", "f", "g"})
        EXPECT_EQ(ask(t, std::string("send 1 ") + m, "session 1"), std::string("session 1: sent ") + m);
    EXPECT_EQ(ask(t, "send 1 h", "session 1"), "session 1: limit reached");
    // The patched close reads the counter and frees it with the session: the next session, very
    // likely at the same address, starts from zero rather than finding bob's counter.
    EXPECT_EQ(ask(t, "close 2", "session 2"), "session 2 closed after 3 messages");
    EXPECT_EQ(ask(t, "open carol", "session "), "session 2 opened for carol");
    EXPECT_EQ(ask(t, "send 2 x", "session 2"), "session 2: sent x");

    // Disabling: the old functions again (no limit), and post_unpatch freed the counters left.
    Cmd d = disable(t, "fix_quota");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "send 1 i", "session 1"), "session 1: sent i");
    EXPECT_EQ(ask(t, "close 1", "session 1"), "session 1 closed");
    Cmd u = unload(t, "fix_quota");
    ASSERT_EQ(u.rc, 0) << u.err;

    // Sessions 1 and 2 were open when the patch went; so may have been one of the worker's (its
    // sessions live a few microseconds; one that switched to the old session_close during the
    // unpatching transition left its counter behind): 2 or 3 counters.
    auto log = log_lines(t.pid());
    const std::string freed = "fix_quota: freed the counters of ";
    std::string freed_line = freed + "2 open sessions";
    for (auto &line : log) {
        if (line.rfind(freed, 0) != 0) continue;
        int n = std::atoi(line.c_str() + freed.size());
        EXPECT_TRUE(n == 2 || n == 3) << line;
        freed_line = line;
    }
    std::vector<std::string> expected = enable_lines("fix_quota");
    append(expected, disable_lines("fix_quota", {}, {freed_line}));
    EXPECT_EQ(joined(log), joined(expected));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// examples/callbacks: tune.so's callbacks refuse the patch while the settings are locked, raise
// max_workers while the patch is in place, and run for plugin.so whenever it is loaded: when it
// comes after the patch (COMING), goes (GOING), or is there when the patch is enabled or disabled
// (LIVE). The orders are the kernel's test-callbacks.sh cases 6 (pre-patch failure), 2 (module
// coming), 3 (module going) and 1 (target module before the livepatch).
TEST(Examples, Callbacks) {
    Example ex("callbacks");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("app"));
    ASSERT_GE(t.wait_line("ready"), 0) << target_state(t);
    ASSERT_TRUE(t.wait_agent());
    const std::string tune = ex.file("tune.so");

    EXPECT_EQ(ask(t, "show", "max_workers"), "max_workers 4, settings unlocked, plugin: none");
    // pre_patch refuses: the load fails and leaves the process as it was.
    EXPECT_EQ(ask(t, "lock", "settings"), "settings locked");
    Cmd refused = load(t, tune);
    EXPECT_NE(refused.rc, 0);
    EXPECT_NE(refused.err.find("pre-patch callback failed for object 'main'"), std::string::npos)
        << refused.err;
    EXPECT_EQ(ask(t, "show", "max_workers"), "max_workers 4, settings locked, plugin: none");
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);

    EXPECT_EQ(ask(t, "unlock", "settings"), "settings unlocked");
    Cmd l = load(t, tune);
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "show", "max_workers"), "max_workers 8, settings unlocked, plugin: none");
    // The plugin comes after the patch: patched before its constructor runs.
    EXPECT_EQ(ask(t, "load", "plugin init"), "plugin init: hello from plugin v2");
    EXPECT_EQ(ask(t, "show", "max_workers"),
              "max_workers 8, settings unlocked, plugin: hello from plugin v2");
    EXPECT_EQ(ask(t, "unload", "plugin"), "plugin unloaded");
    Cmd d = disable(t, "tune");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "show", "max_workers"), "max_workers 4, settings unlocked, plugin: none");
    Cmd u = unload(t, "tune");
    ASSERT_EQ(u.rc, 0) << u.err;

    // The plugin is loaded before the patch: its callbacks run with the patch's enable and disable.
    EXPECT_EQ(ask(t, "load", "plugin init"), "plugin init: hello from plugin v1");
    l = load(t, tune);
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "show", "max_workers"),
              "max_workers 8, settings unlocked, plugin: hello from plugin v2");
    d = disable(t, "tune");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "show", "max_workers"),
              "max_workers 4, settings unlocked, plugin: hello from plugin v1");
    u = unload(t, "tune");
    ASSERT_EQ(u.rc, 0) << u.err;

    std::vector<std::string> expected = {
        "graft: enabling patch 'tune'",
        "graft: 'tune': initializing patching transition",
        "tune: pre_patch main: settings are locked, refusing",
        "graft: pre-patch callback failed for object 'main'",
        "graft: failed to enable patch 'tune'",
        "graft: 'tune': canceling patching transition, going to unpatch",
        "graft: 'tune': completing unpatching transition",
        "graft: 'tune': unpatching complete",
    };
    append(expected, enable_lines("tune", {"tune: pre_patch main: settings unlocked"},
                                  {"tune: post_patch main: max_workers 4 -> 8"}));
    append(expected, {
                         "graft: applying patch 'tune' to loading object 'plugin.so'",
                         "tune: pre_patch plugin.so -> GRAFT_OBJECT_COMING",
                         "tune: post_patch plugin.so -> GRAFT_OBJECT_COMING",
                         "tune: pre_unpatch plugin.so -> GRAFT_OBJECT_GOING",
                         "graft: reverting patch 'tune' on unloading object 'plugin.so'",
                         "tune: post_unpatch plugin.so -> GRAFT_OBJECT_GOING",
                     });
    append(expected, disable_lines("tune", {"tune: pre_unpatch main: max_workers back to 4"},
                                   {"tune: post_unpatch main"}));
    append(expected, enable_lines("tune",
                                  {"tune: pre_patch main: settings unlocked",
                                   "tune: pre_patch plugin.so -> GRAFT_OBJECT_LIVE"},
                                  {"tune: post_patch main: max_workers 4 -> 8",
                                   "tune: post_patch plugin.so -> GRAFT_OBJECT_LIVE"}));
    append(expected,
           disable_lines("tune",
                         {"tune: pre_unpatch main: max_workers back to 4",
                          "tune: pre_unpatch plugin.so -> GRAFT_OBJECT_LIVE"},
                         {"tune: post_unpatch main", "tune: post_unpatch plugin.so -> GRAFT_OBJECT_LIVE"}));
    EXPECT_EQ(joined(log_lines(t.pid())), joined(expected));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// examples/cumulative: fix_a.so and fix_b.so each fix one function; fix_all.so (replace) carries
// both fixes and a third. After it is loaded only fix_all is listed, and the replaced patches can
// be unloaded (kernel: test-livepatch.sh "atomic replace livepatch"; their rmmod prints nothing).
TEST(Examples, Cumulative) {
    Example ex("cumulative");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("calc"));
    ASSERT_GE(t.wait_line("ready"), 0) << target_state(t);
    ASSERT_TRUE(t.wait_agent());

    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=6 5-3=-2 4*3=7");
    Cmd l = load(t, ex.file("fix_a.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=5 5-3=-2 4*3=7");
    l = load(t, ex.file("fix_b.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=5 5-3=2 4*3=7");
    auto st = status(t.pid());
    EXPECT_EQ(listed_patch_names(st["patches"]), (std::vector<std::string>{"fix_a", "fix_b"})) << st.dump(2);

    l = load(t, ex.file("fix_all.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=5 5-3=2 4*3=12");
    st = status(t.pid());
    ASSERT_EQ(listed_patch_names(st["patches"]), std::vector<std::string>{"fix_all"}) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["replace"], true) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true) << st.dump(2);
    // The replaced patches stay in the process until unloaded (the kernel's modules, until rmmod).
    EXPECT_EQ(listed_patch_names(st["unloadable"]), (std::vector<std::string>{"fix_a", "fix_b"}))
        << st.dump(2);
    Cmd list = graft_cmd({"list", std::to_string(t.pid())});
    ASSERT_EQ(list.rc, 0) << list.err;
    EXPECT_EQ(list.out.rfind("fix_all\tenabled=1", 0), 0u) << list.out;
    EXPECT_EQ(list.out.find("fix_a\tenabled"), std::string::npos) << list.out;
    EXPECT_EQ(list.out.find("fix_b\tenabled"), std::string::npos) << list.out;

    for (const char *old : {"fix_a", "fix_b"}) {
        Cmd u = unload(t, old);
        EXPECT_EQ(u.rc, 0) << old << ": " << u.err;
    }
    st = status(t.pid());
    EXPECT_EQ(listed_patch_names(st["patches"]), std::vector<std::string>{"fix_all"}) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=5 5-3=2 4*3=12");

    // Disabling the cumulative patch takes every function back to its original code.
    Cmd d = disable(t, "fix_all");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "show", "2+3="), "2+3=6 5-3=-2 4*3=7");
    Cmd u = unload(t, "fix_all");
    ASSERT_EQ(u.rc, 0) << u.err;

    std::vector<std::string> expected = enable_lines("fix_a");
    append(expected, enable_lines("fix_b"));
    append(expected, enable_lines("fix_all"));
    append(expected, disable_lines("fix_all"));
    EXPECT_EQ(joined(log_lines(t.pid())), joined(expected));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// examples/state: debug_v1.so and debug_v2.so (cumulative) raise log_level and keep the original
// value as the data of state LOG_LEVEL_STATE; v2 takes the state over from v1 with
// graft_get_prev_state(); v1 is then refused as incompatible (kernel: test-state.sh cases 2 and 4).
TEST(Examples, State) {
    Example ex("state");
    ASSERT_TRUE(ex.built()) << ex.make_output();
    Target t(ex.file("daemon"));
    ASSERT_GE(t.wait_line("ready"), 0) << target_state(t);
    ASSERT_TRUE(t.wait_agent());

    EXPECT_EQ(ask(t, "status", "log_level"), "log_level 3, handler v0");
    Cmd l = load(t, ex.file("debug_v1.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "status", "log_level"), "log_level 7, handler v1");
    l = load(t, ex.file("debug_v2.so"));
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_EQ(ask(t, "status", "log_level"), "log_level 7, handler v2");
    auto st = status(t.pid());
    EXPECT_EQ(listed_patch_names(st["patches"]), std::vector<std::string>{"debug_v2"}) << st.dump(2);
    Cmd u = unload(t, "debug_v1");
    EXPECT_EQ(u.rc, 0) << u.err;

    // v1 declares state version 1; v2's version 2 is installed: refused before anything runs.
    Cmd refused = load(t, ex.file("debug_v1.so"));
    EXPECT_NE(refused.rc, 0);
    EXPECT_NE(refused.err.find("not compatible"), std::string::npos) << refused.err;
    EXPECT_NE(refused.err.find("Invalid argument"), std::string::npos) << refused.err;
    EXPECT_EQ(ask(t, "status", "log_level"), "log_level 7, handler v2");

    // Disabling v2 restores the value v1 saved.
    Cmd d = disable(t, "debug_v2");
    ASSERT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(ask(t, "status", "log_level"), "log_level 3, handler v0");
    u = unload(t, "debug_v2");
    ASSERT_EQ(u.rc, 0) << u.err;
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);

    std::vector<std::string> expected =
        enable_lines("debug_v1", {"debug_v1: allocating space to store log_level"},
                     {"debug_v1: raising log_level 3 -> 7"});
    append(expected, enable_lines("debug_v2", {"debug_v2: space to store log_level already allocated"},
                                  {"debug_v2: taking over the log_level change"}));
    append(expected,
           {"graft: Livepatch patch (debug_v1) is not compatible with the already installed livepatches."});
    append(expected, disable_lines("debug_v2", {"debug_v2: restoring log_level 3"},
                                   {"debug_v2: freeing space for the stored log_level"}));
    EXPECT_EQ(joined(log_lines(t.pid())), joined(expected));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
