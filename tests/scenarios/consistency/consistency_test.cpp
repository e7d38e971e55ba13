// User story: a patch changes a data layout shared by three functions (producer -> consumer ->
// printer, see tests/scenarios/consistency/consistency.h) and replaces all three together. The per-thread
// consistency model (kernel-livepatch.md 2.5) promises that a thread never runs a mix of old and
// new functions while one of them is on its stack: a thread blocked inside the old producer keeps
// the transition pending, and finishes that round entirely with the old functions.
#include <gtest/gtest.h>

#include <sstream>

#include "consistency_stats.hpp"
#include "harness.hpp"

using namespace graft::test;

namespace {

const char *kPatch = "consistency_v2";

long parse_tid(const std::string &line, const std::string &prefix) {
    auto at = line.find(prefix);
    return at == std::string::npos ? -1 : std::stol(line.substr(at + prefix.size()));
}

bool no_bad_rounds(Target &t, std::string *why) {
    for (auto &l : t.lines())
        if (l.find("MIXED") != std::string::npos || l.find("BAD") != std::string::npos) {
            *why = l;
            return false;
        }
    return true;
}

// Index of `needle` in `log` at or after `from`, or -1.
int find_log(const std::vector<std::string> &log, const std::string &needle, int from = 0) {
    for (size_t i = static_cast<size_t>(from); i < log.size(); i++)
        if (log[i] == needle) return static_cast<int>(i);
    return -1;
}

struct Started {
    long tid = -1;
};

// Starts the interactive program and waits until its round thread blocks inside producer v1.
Started start_interactive(Target &t) {
    Started s;
    EXPECT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_TRUE(t.wait_agent());
    int i = t.wait_line("roundthr tid ");
    EXPECT_GE(i, 0) << t.all_output();
    if (i >= 0) s.tid = parse_tid(t.lines()[static_cast<size_t>(i)], "roundthr tid ");
    EXPECT_GE(t.wait_line("waiting in producer v1 round 1"), 0) << t.all_output();
    return s;
}

// Waits until the transition of `kPatch` towards `target` lists thread `tid` as pending with
// reason "sleeping on function producer" and that thread is its only pending thread.
// Gives up at once if the transition is over (it must not complete while the thread is blocked).
bool wait_blocked_in_producer(pid_t pid, long tid, const std::string &target, nlohmann::json *last) {
    bool ok = false;
    wait_status(
        pid,
        [&](const nlohmann::json &st) {
            *last = st;
            if (st["transition"].is_null() || st["transition"]["patch"] != kPatch ||
                st["transition"]["target"] != target)
                return true;  // over (or never started): fail now
            const nlohmann::json *e = pending_entry(st, tid);
            ok = e && (*e)["reason"] == "sleeping on function producer" && (*e)["name"] == "roundthr" &&
                 st["transition"]["pending"].size() == 1;
            return ok;
        },
        30);
    return ok;
}

}  // namespace

TEST(Consistency, BlockedProducerFinishesRoundWithOldFunctions) {
    Target t(prog_path("consistency"), {"interactive"});
    Started s = start_interactive(t);
    ASSERT_GT(s.tid, 0);
    const std::string pid = std::to_string(t.pid());

    Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    nlohmann::json st;
    ASSERT_TRUE(wait_blocked_in_producer(t.pid(), s.tid, "patched", &st)) << st.dump(2);

    // It stays pending for as long as the thread sits in the old producer: every later look
    // agrees, and the thread is still in the unpatched state.
    for (int i = 0; i < 20; i++) {
        st = status(t.pid());
        ASSERT_FALSE(st["transition"].is_null()) << "transition completed with a thread inside producer";
        const nlohmann::json *e = pending_entry(st, s.tid);
        ASSERT_NE(e, nullptr) << st.dump(2);
        EXPECT_EQ((*e)["reason"], "sleeping on function producer") << st.dump(2);
        EXPECT_EQ(st["patches"][0]["enabled"], true);
        EXPECT_EQ(st["patches"][0]["transition"], true);
    }
    bool seen = false;
    for (auto &th : threads(t.pid())) {
        if (th["tid"] != s.tid) continue;
        seen = true;
        EXPECT_EQ(th["patch_state"], 0) << th.dump();
        EXPECT_EQ(th["pending"], true) << th.dump();
        EXPECT_EQ(th["name"], "roundthr") << th.dump();
    }
    EXPECT_TRUE(seen);
    EXPECT_EQ(t.line_count(), 3u) << "the round thread moved while blocked: " << t.all_output();

    // Released, it finishes round 1 with the old functions only, then runs round 2 with the new.
    t.send("value 7\n");
    ASSERT_GE(t.wait_line("round 1 value 7 "), 0) << t.all_output();
    EXPECT_GE(t.wait_line("round 1 value 7 versions 1 1 1 out 21 ok"), 0) << t.all_output();
    ASSERT_TRUE(wait_idle(t.pid(), 30))
        << "the transition did not complete after the thread left producer: " << status(t.pid()).dump(2);
    ASSERT_GE(t.wait_line("waiting in producer v2 round 2"), 0) << t.all_output();
    st = status(t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_EQ(st["patches"][0]["transition"], false);

    // The reverse direction: blocked inside the new producer, the unpatching transition waits.
    Cmd dis = graft_cmd({"disable", pid, kPatch});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    ASSERT_TRUE(wait_blocked_in_producer(t.pid(), s.tid, "unpatched", &st)) << st.dump(2);
    for (int i = 0; i < 10; i++) {
        st = status(t.pid());
        ASSERT_FALSE(st["transition"].is_null()) << "transition completed with a thread inside producer";
        ASSERT_NE(pending_entry(st, s.tid), nullptr) << st.dump(2);
    }
    t.send("value 8\n");
    EXPECT_GE(t.wait_line("round 2 value 8 versions 2 2 2 out 24 ok"), 0) << t.all_output();
    ASSERT_TRUE(wait_idle(t.pid(), 30))
        << "the transition did not complete after the thread left producer: " << status(t.pid()).dump(2);
    ASSERT_GE(t.wait_line("waiting in producer v1 round 3"), 0) << t.all_output();
    t.send("value 9\n");
    EXPECT_GE(t.wait_line("round 3 value 9 versions 1 1 1 out 27 ok"), 0) << t.all_output();

    std::string bad;
    EXPECT_TRUE(no_bad_rounds(t, &bad)) << bad;
    Cmd unl = graft_cmd({"unload", pid, kPatch});
    EXPECT_EQ(unl.rc, 0) << unl.err;

    auto log = log_lines(t.pid());
    std::string P = std::string("graft: '") + kPatch + "': ";
    int a = find_log(log, P + "starting patching transition");
    int b = find_log(log, P + "patching complete", a);
    int c = find_log(log, P + "starting unpatching transition", b);
    int d = find_log(log, P + "unpatching complete", c);
    EXPECT_TRUE(a >= 0 && b > a && c > b && d > c) << ::testing::PrintToString(log);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// The signal graft sends to pending threads after the signal timeout does not let the blocked
// thread switch while it is inside producer.
TEST(Consistency, SignalDoesNotSwitchThreadInsideProducer) {
    Target t(prog_path("consistency"), {"interactive"}, {"GRAFT_SIGNAL_TIMEOUT=1"});
    Started s = start_interactive(t);
    ASSERT_GT(s.tid, 0);
    const std::string pid = std::to_string(t.pid());

    Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    nlohmann::json st;
    ASSERT_TRUE(wait_blocked_in_producer(t.pid(), s.tid, "patched", &st)) << st.dump(2);
    const std::string signaling = std::string("graft: '") + kPatch + "': signaling remaining threads";
    ASSERT_TRUE(wait_status(
        t.pid(), [&](const nlohmann::json &) { return find_log(log_lines(t.pid()), signaling) >= 0; }, 30))
        << ::testing::PrintToString(log_lines(t.pid()));
    // Signalled (at least once), the thread is still inside the old producer and still pending.
    st = status(t.pid());
    ASSERT_FALSE(st["transition"].is_null()) << st.dump(2);
    const nlohmann::json *e = pending_entry(st, s.tid);
    ASSERT_NE(e, nullptr) << st.dump(2);
    EXPECT_EQ((*e)["reason"], "sleeping on function producer") << st.dump(2);

    t.send("value 5\n");
    EXPECT_GE(t.wait_line("round 1 value 5 versions 1 1 1 out 15 ok"), 0) << t.all_output();
    ASSERT_TRUE(wait_idle(t.pid(), 30))
        << "the transition did not complete after the thread left producer: " << status(t.pid()).dump(2);
    ASSERT_GE(t.wait_line("waiting in producer v2 round 2"), 0) << t.all_output();
    t.send("value 6\n");
    EXPECT_GE(t.wait_line("round 2 value 6 versions 2 2 2 out 18 ok"), 0) << t.all_output();
    std::string bad;
    EXPECT_TRUE(no_bad_rounds(t, &bad)) << bad;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// Load/disable cycles while 8 threads run rounds: not one round mixes versions.
TEST(Consistency, LoadDisableCyclesNeverMixARound) {
    Target t(prog_path("consistency"), {"workers", "8"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    const int cycles = scaled(100, 20);
    Stats prev = read_stats(t);
    ASSERT_GE(prev.rounds, 0) << t.all_output();
    for (int i = 0; i < cycles; i++) {
        Cmd load = graft_cmd({"load", pid, patch_path(kPatch), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << "cycle " << i << ": " << load.err;
        // Every cycle runs rounds with the new layout before it is disabled again.
        Stats now;
        ASSERT_TRUE(wait_status(
            t.pid(),
            [&](const nlohmann::json &) {
                now = read_stats(t);
                return now.v2 > prev.v2;
            },
            30))
            << "cycle " << i << ": no round ran with v2";
        prev = now;
        Cmd dis = graft_cmd({"disable", pid, kPatch, "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << "cycle " << i << ": " << dis.err;
        Cmd unl = graft_cmd({"unload", pid, kPatch});
        ASSERT_EQ(unl.rc, 0) << "cycle " << i << ": " << unl.err;
    }
    Stats end = read_stats(t);
    ASSERT_GE(end.rounds, 0) << t.all_output();
    EXPECT_EQ(end.mixed, 0) << "rounds " << end.rounds;
    EXPECT_EQ(end.bad, 0) << "rounds " << end.rounds;
    EXPECT_GT(end.v1, 0);
    EXPECT_GE(end.v2, cycles);
    std::string bad;
    EXPECT_TRUE(no_bad_rounds(t, &bad)) << bad;
    auto st = status(t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
