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

    const int kCycles = scaled(100, 20);  // a hundred but under GRAFT_STRESS_SCALE (sanitizer stage)
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
