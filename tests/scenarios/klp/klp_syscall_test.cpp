// The kernel's tools/testing/selftests/livepatch/test-syscall.sh, ported (reference:
// kernel-livepatch.md 8.10): "patch getpid syscall while being heavily hammered". The kernel
// starts one getpid-calling process per CPU and patches the system call for all of them; graft
// patches processes one at a time, so here several processes, each with several threads calling
// klp_getpid() in a loop, get test_klp_syscall at the same time (one `graft load` per process,
// run concurrently). Every thread of every process must end up running the new function
// ("Remaining not livepatched threads: 0"), with every transition completed; each process's log
// must read as the kernel's transcript. Unlike the kernel's test, the threads keep hammering
// through the disable: the unpatching transition is proved under the same load.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <sstream>

#include "harness.hpp"
#include "klp_session.hpp"

using namespace graft::test;

namespace {

constexpr int kProcesses = 2;
constexpr int kThreads = 8;

// One hammering process: klp_syscall_host under `graft run`.
struct Hammer {
    Target t{prog_path("klp_syscall_host"), {std::to_string(kThreads)}};

    std::string ask_ok(const std::string &cmd, const std::string &prefix) {
        std::string a = ask(t, cmd, prefix, 90);
        EXPECT_EQ(a.rfind("ok", 0), 0u) << cmd << " -> " << a << " (" << target_state(t) << ")";
        return a;
    }
    void mark(const std::string &text) { ask_ok("log % " + text, "ok log"); }
    unsigned long calls() {
        std::string a = ask_ok("calls", "ok calls");
        return a.rfind("ok calls: ", 0) == 0 ? std::stoul(a.substr(10)) : 0;
    }
    // The threads still make progress: the count of calls grows (each ask is a round trip to
    // the process, during which the hammering threads run).
    bool progressing() {
        unsigned long before = calls();
        for (int i = 0; i < 1000; i++)
            if (calls() > before) return true;
        return false;
    }
    std::vector<std::string> transcript() { return klp_transcript(t.pid()); }
};

TEST(KlpSyscall, PatchGetpidWhileBeingHeavilyHammered) {
    SigpipeBlocked no_sigpipe;
    std::vector<std::unique_ptr<Hammer>> procs;
    for (int i = 0; i < kProcesses; i++) {
        procs.push_back(std::make_unique<Hammer>());
        ASSERT_GE(procs.back()->t.wait_line("ready"), 0) << target_state(procs.back()->t);
        ASSERT_TRUE(procs.back()->t.wait_agent()) << target_state(procs.back()->t);
    }
    for (auto &h : procs) {
        // Every thread is counted, and hammering, before the patch comes.
        EXPECT_EQ(h->ask_ok("npids", "ok npids"), "ok npids: " + std::to_string(kThreads));
        EXPECT_TRUE(h->progressing());
        h->mark("graft load test_klp_syscall.so");
    }
    std::vector<std::future<Cmd>> loads;
    for (auto &h : procs)
        loads.push_back(std::async(std::launch::async, [pid = h->t.pid()] {
            return graft_cmd({"load", std::to_string(pid), patch_path("test_klp_syscall")});
        }));
    for (auto &l : loads) {
        Cmd c = l.get();
        EXPECT_EQ(c.rc, 0) << c.out << c.err;
    }
    for (auto &h : procs) {
        EXPECT_EQ(h->ask_ok("remaining", "ok remaining"),
                  "ok remaining: Remaining not livepatched threads: 0");
        EXPECT_TRUE(wait_idle(h->t.pid()));
        EXPECT_TRUE(h->progressing());  // still hammering, now on the new function
    }
    for (auto &h : procs) {
        h->mark("graft disable test_klp_syscall");
        Cmd c = graft_cmd({"disable", std::to_string(h->t.pid()), "test_klp_syscall"});
        EXPECT_EQ(c.rc, 0) << c.err;
    }
    for (auto &h : procs) {
        EXPECT_TRUE(wait_status(h->t.pid(), [](const nlohmann::json &st) { return st["patches"].empty(); }))
            << "test_klp_syscall did not finish unpatching in " << h->t.pid();
        h->mark("graft unload test_klp_syscall");
        Cmd c = graft_cmd({"unload", std::to_string(h->t.pid()), "test_klp_syscall"});
        EXPECT_EQ(c.rc, 0) << c.err;
        // The original function runs again, still under load, with the patch's code unmapped.
        EXPECT_TRUE(h->progressing());
        h->ask_ok("stop", "ok stop");
    }
    const std::string expected = R"(% graft load test_klp_syscall.so
graft: enabling patch 'test_klp_syscall'
graft: 'test_klp_syscall': initializing patching transition
graft: 'test_klp_syscall': starting patching transition
graft: 'test_klp_syscall': completing patching transition
graft: 'test_klp_syscall': patching complete
test_klp_syscall: Remaining not livepatched threads: 0
% graft disable test_klp_syscall
graft: 'test_klp_syscall': initializing unpatching transition
graft: 'test_klp_syscall': starting unpatching transition
graft: 'test_klp_syscall': completing unpatching transition
graft: 'test_klp_syscall': unpatching complete
% graft unload test_klp_syscall
)";
    for (auto &h : procs) EXPECT_EQ(join_lines(h->transcript()), expected) << "process " << h->t.pid();
    for (auto &h : procs) {
        h->t.send("quit\n");
        EXPECT_EQ(h->t.wait_exit(), 0) << target_state(h->t);
    }
}

}  // namespace
