// User story: a patched program forks (the kernel's klp_copy_process, seed 747f7a29). The child
// keeps the patches and the patch state of the thread that forked, has a working agent of its
// own (`graft status CHILD` answers, and its patches can be changed without touching the
// parent's), and a fork in the middle of a transition leaves a child whose own transition
// completes by itself, to the state the parent's transition was heading for.
// fork_host: workers call f() (0; fork_fix: 1); children report f() on SIGUSR1, exit on SIGTERM.
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>

#include "harness.hpp"

using namespace graft::test;

namespace {

// Children still running when a test ends (on a failure) are killed.
struct Children {
    std::vector<pid_t> pids;
    ~Children() {
        for (pid_t p : pids) kill(p, SIGKILL);
    }
    void forget(pid_t p) { std::erase(pids, p); }
};

// A signal to the process's main thread (the only one of the program's threads in a child), not
// to whichever thread the kernel picks: the agent's threads do not block the test's signals.
bool signal_main(pid_t pid, int sig) {
    return syscall(SYS_tgkill, pid, pid, sig) == 0;
}

// The pid in a line "PREFIX PID..." printed after line `from`, or -1.
pid_t pid_after(Target &t, const std::string &prefix, size_t from) {
    int i = t.wait_line(prefix, 30, from);
    if (i < 0) return -1;
    return static_cast<pid_t>(std::atoi(t.lines()[static_cast<size_t>(i)].c_str() + prefix.size()));
}

// "fork" -> the child's pid (from its "child PID" line), or -1.
pid_t fork_child(Target &t, Children &children) {
    size_t from = t.line_count();
    t.send("fork\n");
    pid_t p = pid_after(t, "child ", from);
    if (p > 0) children.pids.push_back(p);
    return p;
}

// What f() returns in the child (SIGUSR1 -> "child PID f=N"), as that line.
std::string child_f(Target &t, pid_t child) {
    std::string prefix = "child " + std::to_string(child) + " f=";
    size_t from = t.line_count();
    if (!signal_main(child, SIGUSR1)) return "<cannot signal the child>";
    int i = t.wait_line(prefix, 30, from);
    return i < 0 ? "<no answer from the child>" : t.lines()[static_cast<size_t>(i)];
}

// SIGTERM to the child, then the parent reaps it: "reaped PID status S".
std::string end_child(Target &t, Children &children, pid_t child) {
    if (!signal_main(child, SIGTERM)) return "<cannot signal the child>";
    std::string l = ask(t, "reap " + std::to_string(child), "reaped " + std::to_string(child));
    children.forget(child);
    return l;
}

std::string reaped(pid_t child) {
    return "reaped " + std::to_string(child) + " status 0";
}

std::string child_says(pid_t child, int f) {
    return "child " + std::to_string(child) + " f=" + std::to_string(f);
}

bool answers(pid_t pid) {
    return wait_status(
        pid, [](const nlohmann::json &) { return true; }, 30);
}

bool unloadable_has(const nlohmann::json &st, const std::string &name) {
    for (auto &p : st["unloadable"])
        if (p["name"] == name) return true;
    return false;
}

}  // namespace

// (a) Forked after the patch completed: the child is patched, its agent answers and acts on the
// child alone.
TEST(Fork, ChildKeepsPatchesAndHasAnAgent) {
    Target t(prog_path("fork_host"), {"3"});
    Children children;  // destroyed first: the children hold t's output pipe open
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    EXPECT_EQ(ask(t, "call", "f="), "f=0");
    Cmd load = graft_cmd({"load", pid, patch_path("fork_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
    EXPECT_EQ(ask(t, "call", "f="), "f=1");

    pid_t child = fork_child(t, children);
    ASSERT_GT(child, 0) << t.all_output();
    ASSERT_TRUE(answers(child)) << "graft status " << child << " does not answer";
    auto st = status(child);
    EXPECT_EQ(st["pid"], child) << st.dump(2);
    EXPECT_TRUE(st["transition"].is_null()) << st.dump(2);
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["name"], "fork_fix") << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["transition"], false) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["objects"][0]["patched"], true) << st.dump(2);
    bool main_thread_listed = false;
    for (auto &th : threads(child)) {
        EXPECT_EQ(th["patch_state"], -1) << th.dump();
        EXPECT_EQ(th["pending"], false) << th.dump();
        main_thread_listed = main_thread_listed || th["tid"] == child;
    }
    EXPECT_TRUE(main_thread_listed) << "the child's only thread of the program is not listed";
    EXPECT_EQ(child_f(t, child), child_says(child, 1));

    // The child's agent changes the child only.
    Cmd dis = graft_cmd({"disable", std::to_string(child), "fork_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_NE(dis.out.find("graft: 'fork_fix': unpatching complete"), std::string::npos) << dis.out;
    EXPECT_EQ(child_f(t, child), child_says(child, 0));
    EXPECT_EQ(ask(t, "call", "f="), "f=1") << "disabling the patch in the child changed the parent";
    st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true) << st.dump(2);

    EXPECT_EQ(end_child(t, children, child), reaped(child));

    dis = graft_cmd({"disable", pid, "fork_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(ask(t, "call", "f="), "f=0");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// How a round of ForkDuringTransitions forks.
enum class Way {
    kHeld,    // the holder keeps the parent's transition pending; the (switched) main thread forks
    kInside,  // the main thread, pending inside f(), forks there: the child starts pending in f()
    kAtOnce,  // "fork" right after the transition started
};

const char *way_name(Way w) {
    return w == Way::kHeld ? "held" : w == Way::kInside ? "inside f" : "at once";
}

// (b) Forks during patching and unpatching transitions, three ways (see Way). Every child
// answers `graft status`, completes its own transition to the state the parent's was heading
// for, sees f() of that state, and exits normally. A child forked inside f() starts with its
// thread pending in the forking thread's state (sleeping on function f), and its transition
// completes as soon as it leaves f().
TEST(Fork, ForkDuringTransitions) {
    const int rounds = scaled(21, 6);  // a multiple of 3 at the floor: every way is taken
    Target t(prog_path("fork_host"), {"3"});
    Children children;  // destroyed first: the children hold t's output pipe open
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    int in_transition_at_once = 0;
    for (int i = 0; i < rounds; i++) {
        const Way way = static_cast<Way>(i % 3);
        for (bool enable : {true, false}) {
            const int target_f = enable ? 1 : 0;
            const std::string target = enable ? "patched" : "unpatched";
            SCOPED_TRACE("round " + std::to_string(i) + (enable ? " patching, " : " unpatching, ") +
                         way_name(way));
            if (way == Way::kHeld) {
                EXPECT_EQ(ask(t, "hold", "holding"), "holding");
            }
            if (way == Way::kInside) {
                EXPECT_EQ(ask(t, "forkf", "main in f"), "main in f");
            }
            Cmd op = enable ? graft_cmd({"load", pid, patch_path("fork_fix"), "--no-wait"})
                            : graft_cmd({"disable", pid, "fork_fix"});
            ASSERT_EQ(op.rc, 0) << op.out << op.err << target_state(t);
            if (way != Way::kAtOnce) {
                auto st = status(t.pid());
                ASSERT_FALSE(st["transition"].is_null()) << "the held transition is over: " << st.dump(2);
                EXPECT_EQ(st["transition"]["target"], target) << st.dump(2);
            }

            pid_t child = -1;
            if (way == Way::kInside) {
                size_t from = t.line_count();
                ASSERT_TRUE(signal_main(t.pid(), SIGUSR2));
                child = pid_after(t, "child ", from);
                if (child > 0) children.pids.push_back(child);
                ASSERT_GT(child, 0) << t.all_output();
                EXPECT_GE(t.wait_line("forked " + std::to_string(child), 30, from), 0) << t.all_output();
            } else {
                child = fork_child(t, children);
                ASSERT_GT(child, 0) << t.all_output();
            }
            if (way == Way::kHeld) {
                // The holder finishes the f() it was in: the version it entered.
                EXPECT_EQ(ask(t, "release", "released f="), "released f=" + std::to_string(1 - target_f));
            }
            ASSERT_TRUE(wait_idle(t.pid())) << "the parent's transition does not complete";
            EXPECT_EQ(ask(t, "call", "f="), "f=" + std::to_string(target_f));

            ASSERT_TRUE(answers(child)) << "graft status " << child << " does not answer";
            if (way == Way::kInside) {
                // The child's only thread is the forking one, still in f(), in its old state: the
                // transition waits for it (the reason is as of the agent's last retry: wait for it).
                nlohmann::json st;
                bool pending_in_f = false;
                wait_status(
                    child,
                    [&](const nlohmann::json &s) {
                        st = s;
                        if (s["transition"].is_null()) return true;  // over: fail now
                        for (auto &p : s["transition"]["pending"])
                            pending_in_f = pending_in_f ||
                                           (p["tid"] == child && p["reason"] == "sleeping on function f");
                        return pending_in_f;
                    },
                    30);
                ASSERT_FALSE(st["transition"].is_null()) << st.dump(2);
                EXPECT_EQ(st["transition"]["patch"], "fork_fix") << st.dump(2);
                EXPECT_EQ(st["transition"]["target"], target) << st.dump(2);
                EXPECT_EQ(st["transition"]["pending"].size(), 1u) << st.dump(2);
                EXPECT_TRUE(pending_in_f) << st.dump(2);
                bool listed = false;
                for (auto &th : threads(child)) {
                    if (th["tid"] != child) continue;
                    listed = true;
                    EXPECT_EQ(th["patch_state"], 1 - target_f) << th.dump();
                    EXPECT_EQ(th["pending"], true) << th.dump();
                }
                EXPECT_TRUE(listed) << "the child's thread is not listed";
                // Out of f(): it returns what the version it was in returns; then it switches.
                size_t from = t.line_count();
                ASSERT_TRUE(signal_main(child, SIGUSR1));
                int l = t.wait_line("child " + std::to_string(child) + " left f=", 30, from);
                ASSERT_GE(l, 0) << t.all_output();
                EXPECT_EQ(t.lines()[static_cast<size_t>(l)],
                          "child " + std::to_string(child) + " left f=" + std::to_string(1 - target_f));
            } else if (way == Way::kAtOnce) {
                in_transition_at_once += !status(child)["transition"].is_null();
            }
            nlohmann::json st;
            ASSERT_TRUE(wait_status(
                child,
                [&](const nlohmann::json &s) {
                    st = s;
                    return s["transition"].is_null();
                },
                60))
                << "the child's transition does not complete: " << st.dump(2);
            if (enable) {
                ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
                EXPECT_EQ(st["patches"][0]["name"], "fork_fix") << st.dump(2);
                EXPECT_EQ(st["patches"][0]["enabled"], true) << st.dump(2);
            } else {
                EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
                EXPECT_TRUE(unloadable_has(st, "fork_fix")) << st.dump(2);
            }
            for (auto &th : threads(child)) {
                EXPECT_EQ(th["patch_state"], -1) << th.dump();
                EXPECT_EQ(th["pending"], false) << th.dump();
            }
            EXPECT_EQ(child_f(t, child), child_says(child, target_f));
            EXPECT_EQ(end_child(t, children, child), reaped(child));
        }
        Cmd unl = graft_cmd({"unload", pid, "fork_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
    }
    std::cout << in_transition_at_once << " of " << 2 * (rounds / 3)
              << " children forked right after the start of a transition were still in it when first asked"
              << std::endl;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}
