// User story: threads that never block are switched by the transition signal, whose handler
// walks the thread's own stack with the rows the worker published (docs/design.md §6.1) once
// they cover it, and with libgcc's unwinder before; a thread calling a patched function is
// checked by the selector's self-checks, which walk from the function's caller the same way. Either walk
// gives the same verdict: a thread spinning inside a function the patch replaces — under ordinary frames, or
// under a frame whose CFA is %rbp-based — is never switched; once it leaves the function, it is.
//
// GRAFT_VERIFY_HANDLER_WALK makes every handler that walked with the rows walk again with libgcc
// and write both verdicts to a file, one line per signal: the test reads them per thread.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "harness.hpp"

using namespace graft::test;

namespace {

const char *kPatch = "handler_walk_fix";

std::vector<std::string> read_lines(const std::string &path) {
    std::vector<std::string> v;
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

// Lines "graft-verify: same tid T ... rows: <verdict>[ in F] cfa ...[ [self-check]]" for the
// thread: from the transition signal's handler, or from the selector's self-checks.
enum class From { kSignal, kSelfCheck };
size_t agreeing(const std::vector<std::string> &lines, long tid, const std::string &rows_verdict,
                From from = From::kSignal) {
    size_t n = 0;
    const std::string head = "graft-verify: same tid " + std::to_string(tid) + " ";
    const std::string tag = " [self-check]";
    for (auto &l : lines) {
        const bool self = l.size() >= tag.size() && l.compare(l.size() - tag.size(), tag.size(), tag) == 0;
        if (l.rfind(head, 0) == 0 && l.find(" rows: " + rows_verdict + " cfa ") != std::string::npos &&
            self == (from == From::kSelfCheck))
            n++;
    }
    return n;
}

std::string mismatches(const std::vector<std::string> &lines) {
    std::string out;
    for (auto &l : lines)
        if (l.rfind("graft-verify: same ", 0) != 0) out += l + "\n";
    return out;
}

}  // namespace

TEST(HandlerWalk, SpinnersAreCheckedWithTheWorkersRows) {
    char dir[] = "/tmp/graft-handler-walk-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string verify = std::string(dir) + "/verify.log";
    Target t(prog_path("handler_walk"), {}, {"GRAFT_VERIFY_HANDLER_WALK=" + verify});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const long plain = tid_of(t, "plain spinning tid ");
    const long fp = tid_of(t, "fp spinning tid ");
    const long free_tid = tid_of(t, "free spinning tid ");
    const long call = tid_of(t, "call spinning tid ");
    ASSERT_GT(call, 0) << t.all_output();
    ASSERT_GT(plain, 0) << t.all_output();
    ASSERT_GT(fp, 0) << t.all_output();
    ASSERT_GT(free_tid, 0) << t.all_output();

    Cmd load = graft_cmd({"load", std::to_string(t.pid()), patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    // The first signals find no rows and walk with libgcc; the worker then publishes rows for
    // every pc they missed, and later signals to the two busy threads walk with those.
    nlohmann::json last;
    bool seen = wait_status(
        t.pid(),
        [&](const nlohmann::json &st) {
            last = st;
            auto lines = read_lines(verify);
            return !pending_entry(st, free_tid) && pending_entry(st, plain) && pending_entry(st, fp) &&
                   pending_entry(st, call) && agreeing(lines, plain, "busy in busy_spin") >= 3 &&
                   agreeing(lines, fp, "busy in busy_fp_spin") >= 3 &&
                   agreeing(lines, call, "busy in busy_call_spin", From::kSelfCheck) >= 3;
        },
        60);
    auto lines = read_lines(verify);
    ASSERT_TRUE(seen) << last.dump(2) << "\n" << ::testing::PrintToString(lines);
    EXPECT_EQ(mismatches(lines), "");
    last = status(t.pid());  // counted after the lines above were written
    EXPECT_GE(last["signal_walks"]["with_rows"].get<uint64_t>(), 6u) << last.dump(2);
    EXPECT_GE(last["self_check_walks"]["with_rows"].get<uint64_t>(), 3u) << last.dump(2);
    EXPECT_GT(last["signal_walks"]["rows"].get<uint64_t>(), 0u) << last.dump(2);
    // Released, each leaves its function, spins on in run(), and is switched by a signal whose
    // walk the rows answer "clean" (its new stack is made of functions already covered; the
    // main thread, not the released one, prints "left", so no signal finds it in stdio).
    for (const char *kind : {"plain", "fp", "call"}) {
        size_t mark = t.line_count();
        t.send(std::string("release ") + kind + "\n");
        ASSERT_GE(t.wait_line(std::string(kind) + " left", 30, mark), 0) << t.all_output();
    }
    ASSERT_TRUE(wait_idle(t.pid(), 60)) << status(t.pid()).dump(2);
    // Every check that walked was timed as a hold of its thread (hold_stats.hpp). A check counts
    // its walk before its hold, so a thread still finishing its last one may lag for a moment:
    // the counts must agree once no transition runs.
    const auto holds_agree = [](const nlohmann::json &st) {
        for (const char *k : {"signal", "self_check"}) {
            const auto &h = st["holds"][k];
            const auto &w = st[std::string(k) + "_walks"];
            uint64_t in_buckets = 0;
            for (auto &b : h["histogram_us"]) in_buckets += b[1].get<uint64_t>();
            if (h["count"].get<uint64_t>() <
                    w["with_rows"].get<uint64_t>() + w["with_libgcc"].get<uint64_t>() ||
                in_buckets != h["count"].get<uint64_t>() ||
                h["total_us"].get<double>() < h["max_us"].get<double>())
                return false;
        }
        return st["holds"]["signal"]["max_us"].get<double>() > 0 &&
               st["holds"]["self_check"]["max_us"].get<double>() > 0;
    };
    EXPECT_TRUE(wait_status(t.pid(), holds_agree, 10)) << status(t.pid()).dump(2);
    lines = read_lines(verify);
    EXPECT_GE(agreeing(lines, plain, "clean"), 1u) << ::testing::PrintToString(lines);
    EXPECT_GE(agreeing(lines, fp, "clean"), 1u) << ::testing::PrintToString(lines);
    // The call thread may be switched by a self-check or by a signal: one of them saw it clean.
    EXPECT_GE(agreeing(lines, call, "clean", From::kSelfCheck) + agreeing(lines, call, "clean"), 1u)
        << ::testing::PrintToString(lines);
    EXPECT_EQ(mismatches(lines), "");
    bool complete = false;
    for (auto &l : log_lines(t.pid()))
        complete = complete || l == std::string("graft: '") + kPatch + "': patching complete";
    EXPECT_TRUE(complete) << ::testing::PrintToString(log_lines(t.pid()));
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
    unlink(verify.c_str());
    rmdir(dir);
}

// A check that runs out of its time in libgcc's walk gives up (the thread is held only that
// long), and the worker climbs the rest of the stack from the frame the rows missed to prepare
// every row it needs: here every libgcc walk runs out at once (GRAFT_OWN_WALK_BUDGET_US), so a
// thread 100 frames deep under six functions of its own can only be switched by a walk with the
// rows the worker prepared — or, after two checks that ran out, by one allowed all its time
// (which this test must not need: without the worker's climb, it fails that way).
TEST(HandlerWalk, DeepStackRowsArePreparedFromTheMiss) {
    char dir[] = "/tmp/graft-handler-walk-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string verify = std::string(dir) + "/verify.log";
    Target t(prog_path("handler_walk"), {},
             {"GRAFT_VERIFY_HANDLER_WALK=" + verify, "GRAFT_OWN_WALK_BUDGET_US=0.001"});
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    ASSERT_TRUE(t.wait_agent());
    const long deep = tid_of(t, "deep spinning tid ");
    ASSERT_GT(deep, 0) << t.all_output();
    for (const char *kind : {"plain", "fp", "call"}) {  // only the deep and free threads stay
        size_t mark = t.line_count();
        t.send(std::string("release ") + kind + "\n");
        ASSERT_GE(t.wait_line(std::string(kind) + " left", 30, mark), 0) << t.all_output();
    }
    Cmd load = graft_cmd({"load", std::to_string(t.pid()), patch_path(kPatch), "--no-wait"});
    ASSERT_EQ(load.rc, 0) << load.err;
    nlohmann::json last;
    bool switched = wait_status(
        t.pid(),
        [&](const nlohmann::json &st) {
            last = st;
            return !pending_entry(st, deep);
        },
        60);
    ASSERT_TRUE(switched) << last.dump(2);
    auto lines = read_lines(verify);
    EXPECT_GE(agreeing(lines, deep, "clean"), 1u) << ::testing::PrintToString(lines);
    EXPECT_EQ(mismatches(lines), "");
    last = status(t.pid());
    EXPECT_GE(last["signal_walks"]["timed_out"].get<uint64_t>(), 1u) << last.dump(2);
    EXPECT_GE(last["signal_walks"]["with_rows"].get<uint64_t>(), 1u) << last.dump(2);
    ASSERT_TRUE(wait_idle(t.pid(), 60)) << status(t.pid()).dump(2);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
    unlink(verify.c_str());
    rmdir(dir);
}
