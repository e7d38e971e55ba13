// User story: a C++ service is patched. Its patched functions throw exceptions that callers
// catch — thrown inside the patched function, thrown below it and passing through it, in the old
// version and in the patch's new one — and it cancels threads (pthread_cancel) that are blocked
// inside a patched function: before a transition, while the transition waits for exactly that
// thread, and after it. Every exception is caught where it should be, every cancellation runs
// the thread's destructors and cleanup handlers, and nothing crashes.
#include <map>
#include <sstream>

#include <pthread.h>
#include <signal.h>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

// "throw": both answers, joined.
std::string throw_once(Target &t) {
    size_t from = t.line_count();
    t.send("throw\n");
    int a = t.wait_line(" may_throw", 30, from);
    int b = t.wait_line(" pass_through", 30, from);
    if (a < 0 || b < 0) return "<no answer to throw>";
    auto l = t.lines();
    return l[static_cast<size_t>(a)] + " | " + l[static_cast<size_t>(b)];
}

std::string throws_of(int v) {
    return "caught may_throw may_throw v" + std::to_string(v) + " | caught pass_through thrown below v" +
           std::to_string(v);
}

// Sends a new thread into blocker(); returns the version it entered (or -1).
int enter(Target &t, int id) {
    std::string l = ask(t, "enter " + std::to_string(id), "blocking " + std::to_string(id) + " ");
    auto k = l.find("version ");
    return k == std::string::npos ? -1 : std::stoi(l.substr(k + 8));
}

std::string cancel(Target &t, int id) {
    return ask(t, "cancel " + std::to_string(id), "cancelled " + std::to_string(id) + " ");
}

std::string cancelled(int id, int version) {
    return "cancelled " + std::to_string(id) + " result=canceled dtor=" + std::to_string(version) +
           " handler=1";
}

// The transition of `patch` waits for one thread only, and that one sleeps in blocker().
bool waits_only_for_blocker(pid_t pid, const std::string &patch) {
    return wait_status(pid, [&](const nlohmann::json &s) {
        const auto &tr = s["transition"];
        if (tr.is_null() || tr["patch"] != patch || tr["pending"].size() != 1) return false;
        return tr["pending"][0].value("reason", "").find("blocker") != std::string::npos;
    });
}

std::map<std::string, long> parse_stats(const std::string &line) {
    std::map<std::string, long> m;
    std::istringstream is(line);
    std::string w;
    is >> w;
    while (is >> w) {
        auto eq = w.find('=');
        if (eq == std::string::npos) continue;
        std::string k = w.substr(0, eq), v = w.substr(eq + 1);
        auto comma = v.find(',');
        if (comma != std::string::npos) {
            m[k + "1"] = std::stol(v.substr(0, comma));
            m[k + "2"] = std::stol(v.substr(comma + 1));
        } else {
            m[k] = std::stol(v);
        }
    }
    return m;
}

}  // namespace

TEST(CxxUnwind, ExceptionsAndCancellationAcrossTransitions) {
    // No throwing workers here; a long signal timeout: threads kept in blocker() must keep their
    // transition pending.
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("cxx_unwind"), {"0"}, {"GRAFT_SIGNAL_TIMEOUT=600"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string patch = patch_path("cxx_unwind_fix");

    // Before any patch.
    EXPECT_EQ(throw_once(t), throws_of(1));
    EXPECT_EQ(enter(t, 1), 1);
    EXPECT_EQ(cancel(t, 1), cancelled(1, 1));

    // During the patching transition: thread 2 sleeps in the old blocker(), so the transition
    // stays pending on it alone.
    EXPECT_EQ(enter(t, 2), 1);
    Cmd load = graft_cmd({"load", pid, patch, "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    ASSERT_TRUE(waits_only_for_blocker(t.pid(), "cxx_unwind_fix")) << status(t.pid()).dump(2);
    // The main thread is switched: exceptions now come from, and pass through, the new functions.
    EXPECT_EQ(throw_once(t), throws_of(2));
    // A thread it creates starts patched; cancelled inside the patch's blocker().
    EXPECT_EQ(enter(t, 3), 2);
    EXPECT_EQ(cancel(t, 3), cancelled(3, 2));
    ASSERT_TRUE(waits_only_for_blocker(t.pid(), "cxx_unwind_fix")) << status(t.pid()).dump(2);
    // Cancelled inside the old blocker() while the transition waits for it: then it completes.
    EXPECT_EQ(cancel(t, 2), cancelled(2, 1));
    ASSERT_TRUE(wait_idle(t.pid())) << status(t.pid()).dump(2);
    auto st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u);
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_EQ(st["patches"][0]["forced"], false);

    // After the transition.
    EXPECT_EQ(throw_once(t), throws_of(2));
    EXPECT_EQ(enter(t, 4), 2);
    EXPECT_EQ(cancel(t, 4), cancelled(4, 2));

    // During the unpatching transition: thread 5 sleeps in the patch's blocker().
    EXPECT_EQ(enter(t, 5), 2);
    Cmd dis = graft_cmd({"disable", pid, "cxx_unwind_fix"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
    ASSERT_TRUE(waits_only_for_blocker(t.pid(), "cxx_unwind_fix")) << status(t.pid()).dump(2);
    EXPECT_EQ(throw_once(t), throws_of(1));
    EXPECT_EQ(enter(t, 6), 1);
    EXPECT_EQ(cancel(t, 6), cancelled(6, 1));
    EXPECT_EQ(cancel(t, 5), cancelled(5, 2));
    ASSERT_TRUE(wait_idle(t.pid())) << status(t.pid()).dump(2);
    EXPECT_EQ(throw_once(t), throws_of(1));
    Cmd unl = graft_cmd({"unload", pid, "cxx_unwind_fix"});
    ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
    EXPECT_TRUE(status(t.pid())["patches"].empty());
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// Four threads throw through may_throw() and pass_through() all the time while the patch is
// loaded and disabled 300 times (40 under GRAFT_STRESS_SCALE < 1: CI's ASan stage, where 150 took
// 8 minutes): every
// exception is caught by its caller, none is lost, and the process survives.
TEST(CxxUnwind, ExceptionStormOverLoadDisableCycles) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("cxx_unwind"), {"4"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const std::string patch = patch_path("cxx_unwind_fix");
    auto s0 = parse_stats(ask(t, "stats", "stats "));
    const int cycles = stress_scale() < 1 ? 20 : 300;
    for (int i = 0; i < cycles; i++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        Cmd l = graft_cmd({"load", pid, patch, "--timeout", "60"});
        ASSERT_EQ(l.rc, 0) << l.out << l.err << target_state(t);
        if (i % 10 == 0) {
            EXPECT_EQ(throw_once(t), throws_of(2));
        }
        Cmd d = graft_cmd({"disable", pid, "cxx_unwind_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(d.rc, 0) << d.out << d.err << target_state(t);
        if (i % 10 == 0) {
            EXPECT_EQ(throw_once(t), throws_of(1));
        }
        Cmd u = graft_cmd({"unload", pid, "cxx_unwind_fix"});
        ASSERT_EQ(u.rc, 0) << u.err << target_state(t);
    }
    auto s = parse_stats(ask(t, "stats", "stats "));
    EXPECT_EQ(s["wrong"], 0) << "exceptions with no version, or calls that did not throw";
    EXPECT_GE(s["thrown"] - s["caught"] - s["wrong"], 0);
    EXPECT_LE(s["thrown"] - s["caught"] - s["wrong"], 4) << "more exceptions in flight than workers";
    EXPECT_GT(s["caught"], s0["caught"]);
    EXPECT_GT(s["v1"], s0["v1"]);
    EXPECT_GT(s["v2"], s0["v2"]) << "the workers never ran the patch's functions";
    EXPECT_GT(s["guards2"], s0["guards2"]) << "no Guard of the new pass_through() was unwound";

    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// A C++ patch written like a C one (GRAFT_PATCH at file scope) must load.
TEST(CxxUnwind, PatchWrittenInCxxLoads) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("cxx_unwind"), {"0"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    EXPECT_EQ(ask(t, "value", "may_throw(5)="), "may_throw(5)=6");
    Cmd load = graft_cmd({"load", pid, patch_path("cxx_unwind_cxx_macro"), "--timeout", "60"});
    EXPECT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_EQ(ask(t, "value", "may_throw(5)="), load.rc == 0 ? "may_throw(5)=8" : "may_throw(5)=6");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
