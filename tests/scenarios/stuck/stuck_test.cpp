// User story: a thread never leaves a patched function. The transition stays pending and says
// which thread and function hold it; `graft disable` reverses it; a reload plus `graft force`
// completes it. A thread stuck in the patch's new function keeps a later disable pending, and
// forcing that unpatching marks the patch so that `graft unload` refuses it (kernel-livepatch.md
// 2.6, 2.7; DESIGN.md 3.3).
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

const char *kPatch = "stuck_fix";
const std::string P = std::string("graft: '") + kPatch + "': ";

// Until thread `tid` is the only pending thread of a transition of the patch towards `target`,
// held in hold().
// Gives up at once if the transition is over (it must not complete while the thread is held).
bool wait_stuck(pid_t pid, long tid, const std::string &name, const std::string &target,
                nlohmann::json *last) {
    bool ok = false;
    wait_status(
        pid,
        [&](const nlohmann::json &st) {
            *last = st;
            if (st["transition"].is_null() || st["transition"]["patch"] != kPatch ||
                st["transition"]["target"] != target)
                return true;  // over (or never started): fail now
            const nlohmann::json *e = pending_entry(st, tid);
            ok = e && (*e)["reason"] == "sleeping on function hold" && (*e)["name"] == name &&
                 st["transition"]["pending"].size() == 1;
            return ok;
        },
        30);
    return ok;
}

int version_seen(Target &t) {
    size_t from = t.line_count();
    t.send("ver\n");
    int i = t.wait_line("version ", 30, from);
    if (i < 0) return -1;
    return std::stoi(t.lines()[static_cast<size_t>(i)].substr(8));
}

int find_log(const std::vector<std::string> &log, const std::string &needle, int from = 0) {
    for (size_t i = static_cast<size_t>(from < 0 ? 0 : from); i < log.size(); i++)
        if (log[i] == needle) return static_cast<int>(i);
    return -1;
}

const nlohmann::json *find_patch(const nlohmann::json &arr, const std::string &name) {
    for (auto &p : arr)
        if (p["name"] == name) return &p;
    return nullptr;
}

}  // namespace

TEST(Stuck, ReverseForceAndUnloadRefusal) {
    // A short signal timeout: the transition must stay pending even after graft signals the
    // stuck thread.
    Target t(prog_path("stuck"), {}, {"GRAFT_SIGNAL_TIMEOUT=1"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    EXPECT_EQ(version_seen(t), 1);

    // 1. A thread parked in the old hold() keeps the patching transition pending.
    t.send("hold a\n");
    long a = tid_of(t, "holder a in hold v1 tid ");
    ASSERT_GT(a, 0) << t.all_output();
    Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--timeout", "2"});
    EXPECT_NE(load.rc, 0) << "load completed with a thread inside hold(): " << load.out;
    EXPECT_NE(load.err.find("sleeping on function hold"), std::string::npos) << load.err;
    EXPECT_NE(load.err.find(std::to_string(a)), std::string::npos) << load.err;
    nlohmann::json st;
    ASSERT_TRUE(wait_stuck(t.pid(), a, "holder-a", "patched", &st)) << st.dump(2);
    ASSERT_TRUE(wait_status(
        t.pid(),
        [&](const nlohmann::json &) {
            return find_log(log_lines(t.pid()), P + "signaling remaining threads") >= 0;
        },
        30))
        << ::testing::PrintToString(log_lines(t.pid()));
    st = status(t.pid());
    ASSERT_NE(pending_entry(st, a), nullptr) << st.dump(2);
    EXPECT_EQ((*pending_entry(st, a))["reason"], "sleeping on function hold") << st.dump(2);
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_EQ(st["patches"][0]["transition"], true);
    for (auto &th : threads(t.pid())) {
        if (th["tid"] == a) {
            EXPECT_EQ(th["patch_state"], 0) << th.dump();
            EXPECT_EQ(th["pending"], true) << th.dump();
        }
    }
    // The human-readable status names the thread and the function too.
    Cmd human = graft_cmd({"status", pid});
    EXPECT_EQ(human.rc, 0) << human.err;
    EXPECT_NE(human.out.find("holder-a"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("sleeping on function hold"), std::string::npos) << human.out;

    // 2. `graft disable` reverses the transition; unpatching completes (the stuck thread never
    //    left the unpatched state).
    Cmd dis = graft_cmd({"disable", pid, kPatch, "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    auto log = log_lines(t.pid());
    int rev = find_log(log, P + "reversing transition from patching to unpatching");
    int done = find_log(log, P + "unpatching complete", rev);
    EXPECT_GE(rev, 0) << ::testing::PrintToString(log);
    EXPECT_GT(done, rev) << ::testing::PrintToString(log);
    EXPECT_EQ(find_log(log, P + "patching complete"), -1) << ::testing::PrintToString(log);
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    ASSERT_NE(find_patch(st["unloadable"], kPatch), nullptr) << st.dump(2);
    EXPECT_EQ((*find_patch(st["unloadable"], kPatch))["forced"], false) << st.dump(2);
    EXPECT_EQ(version_seen(t), 1);
    Cmd unl = graft_cmd({"unload", pid, kPatch});
    ASSERT_EQ(unl.rc, 0) << unl.err;

    // 3. Reload: pending again on the same thread; `graft force` completes it.
    size_t log_mark = log_lines(t.pid()).size();
    load = graft_cmd({"load", pid, patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    ASSERT_TRUE(wait_stuck(t.pid(), a, "holder-a", "patched", &st)) << st.dump(2);
    Cmd force = graft_cmd({"force", pid, kPatch, "--wait", "--timeout", "60"});
    ASSERT_EQ(force.rc, 0) << force.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    log = log_lines(t.pid());
    int forced =
        find_log(log, P + "forcing remaining threads to the patched state", static_cast<int>(log_mark));
    EXPECT_GE(forced, 0) << ::testing::PrintToString(log);
    EXPECT_GT(find_log(log, P + "patching complete", forced), forced) << ::testing::PrintToString(log);
    st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_EQ(st["patches"][0]["transition"], false);
    // A patch forced into the patched state is not marked (seed 002).
    EXPECT_EQ(st["patches"][0]["forced"], false) << st.dump(2);
    for (auto &th : threads(t.pid())) {
        EXPECT_EQ(th["patch_state"], -1) << th.dump();
        EXPECT_EQ(th["pending"], false) << th.dump();
    }
    EXPECT_EQ(version_seen(t), 2);

    // 4. A thread that enters the new hold() and never leaves it keeps a disable pending.
    t.send("hold b\n");
    long b = tid_of(t, "holder b in hold v2 tid ");
    ASSERT_GT(b, 0) << t.all_output();
    dis = graft_cmd({"disable", pid, kPatch});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    ASSERT_TRUE(wait_stuck(t.pid(), b, "holder-b", "unpatched", &st)) << st.dump(2);
    // holder-a sits in the *old* hold(): that does not block unpatching.
    EXPECT_EQ(pending_entry(st, a), nullptr) << st.dump(2);
    for (int i = 0; i < 10; i++) {
        st = status(t.pid());
        ASSERT_FALSE(st["transition"].is_null())
            << "unpatching completed with a thread inside the new hold()";
        ASSERT_NE(pending_entry(st, b), nullptr) << st.dump(2);
    }
    // Disabling it again is refused (echo 0 > enabled of a disabled patch) and changes nothing.
    Cmd again = graft_cmd({"disable", pid, kPatch});
    EXPECT_NE(again.rc, 0) << "a second disable of a patch being disabled succeeded: " << again.out;
    st = status(t.pid());
    ASSERT_FALSE(st["transition"].is_null()) << st.dump(2);
    EXPECT_EQ(st["transition"]["target"], "unpatched") << st.dump(2);
    // The patch in transition cannot be unloaded.
    unl = graft_cmd({"unload", pid, kPatch});
    EXPECT_NE(unl.rc, 0);

    // 5. Forcing the unpatching marks the patch: unload refuses it, now and after the thread left.
    force = graft_cmd({"force", pid, kPatch});
    ASSERT_EQ(force.rc, 0) << force.err;
    ASSERT_TRUE(wait_idle(t.pid())) << status(t.pid()).dump(2);
    log = log_lines(t.pid());
    forced = find_log(log, P + "forcing remaining threads to the unpatched state");
    EXPECT_GE(forced, 0) << ::testing::PrintToString(log);
    EXPECT_GT(find_log(log, P + "unpatching complete", forced), forced) << ::testing::PrintToString(log);
    st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    ASSERT_NE(find_patch(st["unloadable"], kPatch), nullptr) << st.dump(2);
    EXPECT_EQ((*find_patch(st["unloadable"], kPatch))["forced"], true) << st.dump(2);
    EXPECT_EQ(version_seen(t), 1);

    unl = graft_cmd({"unload", pid, kPatch});
    EXPECT_NE(unl.rc, 0) << "unload of a forced patch succeeded";
    EXPECT_NE(unl.err.find("Device or resource busy"), std::string::npos) << unl.err;
    EXPECT_EQ(unl.err.rfind("graft: ", 0), 0u) << unl.err;

    t.send("release\n");
    EXPECT_GE(t.wait_line("holder a left hold v1"), 0) << t.all_output();
    EXPECT_GE(t.wait_line("holder b left hold v2"), 0) << t.all_output();
    unl = graft_cmd({"unload", pid, kPatch});
    EXPECT_NE(unl.rc, 0) << "unload of a forced patch succeeded once its threads left";
    EXPECT_NE(unl.err.find("Device or resource busy"), std::string::npos) << unl.err;
    st = status(t.pid());
    EXPECT_NE(find_patch(st["unloadable"], kPatch), nullptr) << st.dump(2);

    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
