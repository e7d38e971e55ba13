// User story: a server has threads sleeping in epoll_wait, poll, nanosleep and read while other
// threads call the function being patched. Patching must not disturb the sleepers: over 100
// load/disable transitions none of their system calls returns EINTR or wakes up before its
// timeout (graft checks blocked threads from /proc instead of signalling them).
#include <map>
#include <sstream>

#include <pthread.h>
#include <signal.h>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

// If the target dies, writing to its stdin must fail with EPIPE rather than kill the test with
// SIGPIPE: blocked in this thread (and the children it starts) while the guard lives.
struct SigpipeBlocked {
    sigset_t old;
    SigpipeBlocked() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &s, &old);
    }
    ~SigpipeBlocked() {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGPIPE);
        timespec zero{0, 0};
        while (sigtimedwait(&s, nullptr, &zero) == SIGPIPE) {
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
};

// On a failure: whether the target is still running, or how it died.
std::string target_state(Target &t) {
    int st = t.wait_exit(1);
    if (st < 0) return "\n(the target is still running)";
    if (st > 128) return "\n(the target died of signal " + std::to_string(st - 128) + ")";
    return "\n(the target exited with status " + std::to_string(st) + ")";
}

std::string ask(Target &t, const std::string &cmd, const std::string &prefix) {
    size_t from = t.line_count();
    t.send(cmd + "\n");
    int i = t.wait_line(prefix, 30, from);
    return i < 0 ? "<no answer to " + cmd + ">" : t.lines()[static_cast<size_t>(i)];
}

std::map<std::string, long> parse_counts(const std::string &line) {
    std::map<std::string, long> m;
    std::istringstream is(line);
    std::string w;
    is >> w;  // "counts"
    while (is >> w) {
        auto eq = w.find('=');
        if (eq != std::string::npos) m[w.substr(0, eq)] = std::stol(w.substr(eq + 1));
    }
    return m;
}

const char *const kWaiters[] = {"epoll", "poll", "nanosleep", "sockread", "piperead"};

}  // namespace

TEST(NoDisturbance, BlockedThreadsSeeNoEintrOverHundredTransitions) {
    SigpipeBlocked no_sigpipe;
    Target t(prog_path("no_disturbance"), {"2"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    auto before = parse_counts(ask(t, "counts", "counts "));
    ASSERT_EQ(before.size(), 5u * 5u + 1u) << t.all_output();

    const int kCycles = 100;
    int pokes = 0;
    for (int i = 0; i < kCycles; i++) {
        SCOPED_TRACE("cycle " + std::to_string(i));
        Cmd load = graft_cmd({"load", pid, patch_path("no_disturbance_fix"), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err << target_state(t);
        ASSERT_EQ(ask(t, "tick", "work "), "work 2");
        size_t from = t.line_count();
        t.send("poke\n");
        pokes++;
        ASSERT_GE(t.wait_line("piperead " + std::to_string(pokes), 30, from), 0) << t.all_output();
        Cmd dis = graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
        ASSERT_EQ(ask(t, "tick", "work "), "work 1");
        Cmd unl = graft_cmd({"unload", pid, "no_disturbance_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err << target_state(t);
    }

    auto after = parse_counts(ask(t, "counts", "counts "));
    for (const char *w : kWaiters) {
        const std::string n = w;
        SCOPED_TRACE(n);
        EXPECT_EQ(after[n + "_eintr"], 0) << "EINTR returns in the " << n << " thread";
        EXPECT_EQ(after[n + "_early"], 0) << "early wake-ups in the " << n << " thread";
        EXPECT_EQ(after[n + "_errors"], 0) << "other errors in the " << n << " thread";
    }
    // The waiters really waited all along: each timed wait returned many times.
    for (const char *w : {"epoll", "poll", "nanosleep", "sockread"}) {
        const std::string n = w;
        EXPECT_GE(after[n + "_iters"] - before[n + "_iters"], 20) << n << " did not keep waiting";
    }
    EXPECT_EQ(after["piperead_data"], pokes);
    EXPECT_EQ(after["piperead_iters"], pokes);
    EXPECT_GT(after["work_calls"], before["work_calls"]);

    // No transition needed the signal timeout (the default, 15 s).
    for (auto &l : log_lines(t.pid()))
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
    EXPECT_TRUE(status(t.pid())["patches"].empty());

    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
