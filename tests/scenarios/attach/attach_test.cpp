// User story: a service started without graft (by systemd, a shell, a container runtime) needs a
// live fix. `graft load PID fix.so` attaches the agent first (`graft attach PID` alone does only
// that); threads blocked in system calls are neither stopped nor signalled while a running thread
// is available, and never see EINTR or an early return; a refused attach leaves the process as
// it was; a `graft` killed at any point of an attach leaves the process running and serving.
#include <fcntl.h>
#include <spawn.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

extern char **environ;

namespace {

const char *const kWaiters[] = {"epoll", "poll", "nanosleep", "sockread", "piperead"};

std::string maps_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

bool agent_mapped(pid_t pid) {
    return maps_of(pid).find("libgraft.so") != std::string::npos;
}

// Loads no_disturbance_fix (its transition completes, work() is 2), runs `between`, disables it
// (work() is 1 again); the load's command in *load.
void patch_and_revert(Target &t, Cmd *load, const std::function<void()> &between = {}) {
    const std::string pid = std::to_string(t.pid());
    *load = graft_cmd({"load", pid, patch_path("no_disturbance_fix"), "--timeout", "60"});
    ASSERT_EQ(load->rc, 0) << load->out << load->err << target_state(t);
    EXPECT_NE(load->out.find("'no_disturbance_fix': patching complete"), std::string::npos) << load->out;
    ASSERT_EQ(ask(t, "tick", "work "), "work 2");
    if (between) {
        ASSERT_NO_FATAL_FAILURE(between());
    }
    Cmd dis = graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err << target_state(t);
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
}

// Loads, disables and unloads no_disturbance_fix `cycles` times, checking work() each way.
void patch_cycles(Target &t, int cycles) {
    for (int i = 0; i < cycles; i++) {
        Cmd load;
        ASSERT_NO_FATAL_FAILURE(patch_and_revert(t, &load));
        Cmd unl = graft_cmd({"unload", std::to_string(t.pid()), "no_disturbance_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
    }
}

// Asks `counts` until `done(counts)` holds (30 s at most); the last counts.
std::map<std::string, long> counts_until(Target &t,
                                         const std::function<bool(std::map<std::string, long> &)> &done) {
    auto c = ask_counts(t, "counts", "counts ");
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         !done(c) && std::chrono::steady_clock::now() < end;)
        c = ask_counts(t, "counts", "counts ");
    return c;
}

// Whether every thread of `pid` is asleep in a system call (none running).
bool all_blocked(pid_t pid) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/task/";
    for (auto &e : std::filesystem::directory_iterator(dir)) {
        std::ifstream f(e.path() / "syscall");
        std::string first;
        if (!(f >> first) || first == "running") return false;
    }
    return true;
}

// Whether every thread of `pid` is asleep in a system call within 30 s.
bool wait_all_blocked(pid_t pid) {
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         !all_blocked(pid) && std::chrono::steady_clock::now() < end;)
        std::this_thread::yield();
    return all_blocked(pid);
}

void expect_undisturbed(Target &t, const std::map<std::string, long> &before) {
    // The pipe reader waits without a timeout: one byte shows it still waits, and only for it.
    ASSERT_EQ(ask(t, "poke", "piperead "), "piperead 1");
    auto after = ask_counts(t, "counts", "counts ");
    EXPECT_EQ(after["piperead_data"], 1);
    for (const char *w : kWaiters) {
        const std::string n = w;
        EXPECT_EQ(after[n + "_eintr"], 0) << "EINTR returns in the " << n << " thread";
        EXPECT_EQ(after[n + "_early"], 0) << "early wake-ups in the " << n << " thread";
        EXPECT_EQ(after[n + "_errors"], 0) << "other errors in the " << n << " thread";
        EXPECT_GT(after[n + "_iters"], before.at(n + "_iters")) << n << " did not keep waiting";
    }
}

}  // namespace

TEST(Attach, LoadAttachesAProcessStartedWithoutGraft) {
    Target t(prog_path("basic"), {"4"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(ask(t, "tick", "greet "), "greet 1");
    EXPECT_FALSE(agent_mapped(t.pid()));

    Cmd load = graft_cmd({"load", pid, patch_path("basic_fix")});
    ASSERT_EQ(load.rc, 0) << load.err;
    EXPECT_EQ(split_lines(load.err), std::vector<std::string>{"graft: " + pid + ": attaching the agent"});
    EXPECT_NE(load.out.find("graft: 'basic_fix': patching complete"), std::string::npos) << load.out;
    EXPECT_EQ(ask(t, "tick", "greet "), "greet 2");
    // Every thread that existed before the agent has graft state, and all of them switched.
    auto th = threads(t.pid());
    EXPECT_EQ(th.size(), 6u) << th.dump();  // main, 4 workers, graft's worker
    for (auto &x : th) EXPECT_EQ(x["pending"], false) << x.dump();
    auto log = log_lines(t.pid());
    ASSERT_FALSE(log.empty());
    EXPECT_EQ(log[0], "graft: attached to a running process; 4 other threads given graft state");

    Cmd again = graft_cmd({"attach", pid});
    EXPECT_EQ(again.rc, 0) << again.err;
    EXPECT_EQ(again.err, "");
    EXPECT_EQ(again.out, "graft: " + pid + ": the agent is already loaded; nothing to do\n");

    Cmd dis = graft_cmd({"disable", pid, "basic_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    EXPECT_EQ(ask(t, "tick", "greet "), "greet 1");
    EXPECT_EQ(graft_cmd({"unload", pid, "basic_fix"}).rc, 0);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

TEST(Attach, AttachIsANoOpUnderGraftRun) {
    Target t(prog_path("basic"), {"2"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    const std::string pid = std::to_string(t.pid());
    Cmd c = graft_cmd({"attach", pid, "--json"});
    ASSERT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(c.err, "");
    EXPECT_EQ(nlohmann::json::parse(c.out)["already"], true) << c.out;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// While a thread runs, it is the one borrowed: the sleepers are never stopped.
TEST(Attach, BlockedThreadsSeeNoEintrThroughAttachAndTransitions) {
    SigpipeBlocked nopipe;
    Target t(prog_path("no_disturbance"), {"2"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    auto before = ask_counts(t, "counts", "counts ");
    Cmd a = graft_cmd({"attach", std::to_string(t.pid()), "--json"});
    ASSERT_EQ(a.rc, 0) << a.err;
    auto rep = nlohmann::json::parse(a.out);
    EXPECT_EQ(rep["borrowed"], "running") << a.out;
    patch_cycles(t, 20);
    expect_undisturbed(t, before);
    for (auto &l : log_lines(t.pid()))
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// Every thread waits with a timeout and runs only briefly: whichever is borrowed (one caught
// running, or one blocked in a call the kernel restarts), no waiter sees EINTR or returns early.
TEST(Attach, NoEintrWhenEveryThreadWaitsWithATimeout) {
    SigpipeBlocked nopipe;
    Target t(prog_path("no_disturbance"), {"0"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    auto before = ask_counts(t, "counts", "counts ");
    Cmd a = graft_cmd({"attach", std::to_string(t.pid()), "--json"});
    ASSERT_EQ(a.rc, 0) << a.err;
    patch_cycles(t, 5);
    // Every timed waiter completes two more waits: the ones a transition may have met are over.
    const auto mid = ask_counts(t, "counts", "counts ");
    counts_until(t, [&](std::map<std::string, long> &c) {
        for (const char *w : {"epoll", "poll", "nanosleep", "sockread"})
            if (c[std::string(w) + "_iters"] < mid.at(std::string(w) + "_iters") + 2) return false;
        return true;
    });
    expect_undisturbed(t, before);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// No thread ever runs by itself: one blocked in a call the kernel restarts (read, futex) is
// borrowed, never the one in epoll_wait (a stop would make it fail with EINTR); the threads
// blocked for good are checked where they stand, so the transitions complete; no call returns.
TEST(Attach, BorrowsAThreadBlockedInARestartingCallWhenNoneRuns) {
    Target t(prog_path("attach_idle"), {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    ASSERT_TRUE(wait_all_blocked(t.pid()));
    Cmd a = graft_cmd({"attach", std::to_string(t.pid()), "--json"});
    ASSERT_EQ(a.rc, 0) << a.err;
    EXPECT_EQ(a.err.find("not dumpable"), std::string::npos) << a.err;
    auto rep = nlohmann::json::parse(a.out);
    const std::string how = rep["borrowed"];
    EXPECT_TRUE(how == "blocked in system call 0" || how == "blocked in system call 202") << a.out;
    const std::string pid = std::to_string(t.pid());
    for (int i = 0; i < 5; i++) {
        Cmd load = graft_cmd({"load", pid, patch_path("no_disturbance_fix"), "--timeout", "60"});
        ASSERT_EQ(load.rc, 0) << load.out << load.err;
        ASSERT_EQ(ask(t, "tick", "work "), "work 2");
        Cmd dis = graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
        ASSERT_EQ(ask(t, "tick", "work "), "work 1");
        ASSERT_EQ(graft_cmd({"unload", pid, "no_disturbance_fix"}).rc, 0);
    }
    EXPECT_EQ(ask(t, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// A C++ program whose only thread is idle in std::getline(std::cin): the thread is blocked in
// read() with the C library's FILE-refill frames (_IO_default_uflow, reached from libstdc++
// through __uflow) as the outermost libc frames. They hold no lock of the library's but the
// FILE's own, so the thread is borrowed (before, no thread could be for 10 s), and the line it
// was waiting for arrives whole afterwards.
TEST(Attach, IdleCppProgramWaitingInStdGetlineIsAttached) {
    Target t(prog_path("attach_getline"), {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    ASSERT_TRUE(wait_all_blocked(t.pid()));
    const std::string pid = std::to_string(t.pid());
    Cmd a = graft_cmd({"attach", pid, "--json"});
    ASSERT_EQ(a.rc, 0) << a.err;
    auto rep = nlohmann::json::parse(a.out);
    EXPECT_EQ(rep["borrowed"], "blocked in system call 0") << a.out;
    EXPECT_EQ(rep["borrowed_tid"], t.pid()) << a.out;
    EXPECT_EQ(ask(t, "a line the thread was waiting for", "echo "), "echo a line the thread was waiting for");
    Cmd load = graft_cmd({"load", pid, patch_path("no_disturbance_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    ASSERT_EQ(ask(t, "tick", "work "), "work 2");
    Cmd dis = graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    ASSERT_EQ(ask(t, "tick", "work "), "work 1");
    ASSERT_EQ(graft_cmd({"unload", pid, "no_disturbance_fix"}).rc, 0);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// Threads the program creates after the attach, through its own pthread_create calls, get graft
// state at birth (the agent points the program's GOT slot at its own pthread_create) and are
// checked where they block, before they ever call a patched function: the transition completes
// without the signal, and none of them returns from its wait. `prog` is attach_idle, linked
// with lazy binding (a writable slot) or with -z now (a slot in a read-only RELRO page).
static void threads_born_after_the_attach(const char *prog) {
    Target t(prog_path(prog), {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    const std::string pid = std::to_string(t.pid());
    Cmd a = graft_cmd({"attach", pid});
    ASSERT_EQ(a.rc, 0) << a.err;
    auto log = log_lines(t.pid());
    ASSERT_GE(log.size(), 2u);
    EXPECT_NE(log[1].find("pthread_create call slot"), std::string::npos) << log[1];
    EXPECT_EQ(log[1].find("graft: 0 pthread_create"), std::string::npos) << log[1];
    EXPECT_NE(log[1].find("(0 read-only, 0 already redirected by another tool)"), std::string::npos)
        << log[1];

    ASSERT_EQ(ask(t, "spawn", "spawned "), "spawned 3");
    ASSERT_TRUE(wait_all_blocked(t.pid()));
    auto before = threads(t.pid());
    EXPECT_EQ(before.size(), 8u) << before.dump();  // main, 3 + 3 waiters, graft's worker

    Cmd load;
    ASSERT_NO_FATAL_FAILURE(patch_and_revert(t, &load, [&] {
        for (auto &x : threads(t.pid())) EXPECT_EQ(x["pending"], false) << x.dump();
        for (auto &l : log_lines(t.pid())) EXPECT_EQ(l.find("no graft state yet"), std::string::npos) << l;
    }));
    for (auto &l : log_lines(t.pid()))
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
    EXPECT_EQ(ask(t, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

TEST(Attach, ThreadsBornAfterTheAttachAreCheckedWhereTheyBlock) {
    threads_born_after_the_attach("attach_idle");
}

TEST(Attach, ThreadsBornAfterTheAttachOfABindNowProgramAreCheckedWhereTheyBlock) {
    threads_born_after_the_attach("attach_idle_now");
}

// Threads born where no birth hook runs have no graft state until the worker finds them blocked
// and offers them a slot: the C library's SIGEV_THREAD helper (created by libc's own call, every
// signal blocked, waiting in sigwaitinfo) and threads created through dlsym's pthread_create
// (no GOT slot to redirect). They are checked where they block, before ever calling a patched
// function: the transitions complete without the signal, none of them returns from its wait.
TEST(Attach, ThreadsBornWithoutABirthHookAreCheckedWhereTheyBlock) {
    Target t(prog_path("attach_idle"), {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(graft_cmd({"attach", pid}).rc, 0);
    ASSERT_EQ(ask(t, "timer", "timer "), "timer 1");
    ASSERT_EQ(ask(t, "dlspawn", "dlspawned "), "dlspawned 2");
    ASSERT_TRUE(wait_all_blocked(t.pid()));
    EXPECT_EQ(threads(t.pid()).size(), 8u);  // main, 3 waiters, timer helper, 2 more, graft's worker

    Cmd load;
    ASSERT_NO_FATAL_FAILURE(patch_and_revert(t, &load));
    for (auto &l : log_lines(t.pid())) {
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
        EXPECT_EQ(l.find("no graft state yet"), std::string::npos) << l;
    }
    EXPECT_EQ(ask(t, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0");
    ASSERT_EQ(graft_cmd({"unload", pid, "no_disturbance_fix"}).rc, 0);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}

// Where no thread runs, graft borrows one blocked in a call the kernel restarts after a stop, never
// one whose call a stop would end with EINTR (signal(7)): epoll_wait, sigtimedwait, semop, and
// read() or accept() on a socket with a receive timeout (read and accept restart otherwise: graft
// asks the socket). graft would have to issue such a call again, with its whole timeout. Six
// processes, each with eight such waiters among fourteen threads, so that the borrowed thread is
// drawn many times. The first also goes through five patch cycles, its blocked threads (select
// and a raw futex wait too) checked where they stand: no call returns.
TEST(Attach, NeverBorrowsAThreadWhoseCallAStopWouldInterrupt) {
    for (int i = 0; i < 6; i++) {
        SCOPED_TRACE("process " + std::to_string(i));
        Target t(prog_path("attach_idle"), {"waits"}, {}, /*under_graft=*/false);
        ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
        ASSERT_TRUE(wait_all_blocked(t.pid()));
        std::istringstream avoid(ask(t, "interruptible", "interruptible"));
        std::set<pid_t> interruptible;
        std::string word;
        for (avoid >> word; avoid >> word;) interruptible.insert(std::stoi(word));
        ASSERT_EQ(interruptible.size(), 8u);
        Cmd a = graft_cmd({"attach", std::to_string(t.pid()), "--json"});
        ASSERT_EQ(a.rc, 0) << a.out << a.err;
        const auto rep = nlohmann::json::parse(a.out);
        EXPECT_EQ(rep["borrowed"].get<std::string>().rfind("blocked in system call ", 0), 0u) << a.out;
        EXPECT_EQ(interruptible.count(rep["borrowed_tid"].get<pid_t>()), 0u) << a.out;
        if (i == 0) {
            ASSERT_NO_FATAL_FAILURE(patch_cycles(t, 5));
            for (auto &l : log_lines(t.pid()))
                EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
        }
        EXPECT_EQ(ask(t, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0 more=0");
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0);
    }
}

// A thread blocked inside dlopen (ld.so reading a FIFO whose writer sends nothing yet) holds the
// loader's lock, in a read() that restarts after a stop: before graft walked the stacks of the
// threads it may borrow, it took that thread first (its tid comes before the reader's), and the
// agent's dlopen ran inside the other. Now the thread blocked in the program's own read() is
// borrowed; its dlopen waits for the loader's lock, and the attach ends once the first dlopen
// has failed on what the FIFO finally sends.
TEST(Attach, NeverBorrowsAThreadInsideTheLoader) {
    const std::string fifo =
        (std::filesystem::temp_directory_path() / ("graft-attach-fifo-" + std::to_string(getpid()))).string();
    unlink(fifo.c_str());
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    Target t(prog_path("attach_loader"), {fifo}, {}, /*under_graft=*/false);
    // Opened for writing once the program's dlopen has opened it for reading (until then: ENXIO);
    // ld.so then waits in read().
    int w = -1;
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         w < 0 && std::chrono::steady_clock::now() < end;
         std::this_thread::sleep_for(std::chrono::milliseconds(1)))
        w = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(w, 0) << "the program never opened " << fifo << t.all_output();
    const int ready = t.wait_line("ready");
    ASSERT_GE(ready, 0) << t.all_output();
    int loader = 0, reader = 0;
    ASSERT_EQ(std::sscanf(t.lines()[static_cast<size_t>(ready)].c_str(), "ready %*d loader=%d reader=%d",
                          &loader, &reader),
              2);
    const std::string pid = std::to_string(t.pid());
    auto in_call = [&](int tid, const char *nr) {
        std::ifstream f("/proc/" + pid + "/task/" + std::to_string(tid) + "/syscall");
        std::string first;
        return (f >> first) && first == nr;
    };
    auto until = [](const std::function<bool()> &done) {
        for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
             !done() && std::chrono::steady_clock::now() < end;)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return done();
    };
    ASSERT_TRUE(until([&] { return in_call(loader, "0") && in_call(reader, "0") && all_blocked(t.pid()); }));
    Cmd a;
    std::thread attach([&] { a = graft_cmd({"attach", pid, "--json"}); });
    // The borrowed reader waits in dlopen for the loader's lock (a futex); 30 s if it never does.
    until([&] { return in_call(reader, "202") || in_call(loader, "202"); });
    const char junk[64] = {};
    EXPECT_EQ(write(w, junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
    close(w);
    attach.join();
    unlink(fifo.c_str());
    ASSERT_EQ(a.rc, 0) << a.out << a.err << t.all_output();
    auto rep = nlohmann::json::parse(a.out);
    EXPECT_EQ(rep["borrowed_tid"], reader) << a.out << " (the thread inside dlopen is " << loader << ")";
    EXPECT_EQ(ask(t, "state", "state "), "state dlopen_returned=1 reads=0 eintr=0");
    EXPECT_EQ(ask(t, "tick", "work "), "work 1");
    Cmd load = graft_cmd({"load", pid, patch_path("no_disturbance_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_EQ(ask(t, "tick", "work "), "work 2");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// A daemon that switched users itself is not dumpable: its /proc files are root's, and the agent
// cannot read its own threads' (docs/limitations.md). The attach works and says so.
TEST(Attach, NonDumpableProcessIsAttachedWithAWarning) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process that switches users";
#if defined(GRAFT_TEST_AGENT_ASAN)  // the agent, not this driver, is built with ASan
    // ASan's runtime in the agent reads its options from /proc/self/environ, which a non-dumpable
    // process cannot open: it then takes the agent's late load for a fatal link-order error.
    GTEST_SKIP() << "an ASan-built agent cannot start in a non-dumpable process";
#endif
    Target t(prog_path("attach_idle"), {"nobody"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    const std::string pid = std::to_string(t.pid());
    Cmd a = graft_cmd({"attach", pid});
    ASSERT_EQ(a.rc, 0) << a.out << a.err;
    EXPECT_NE(
        a.err.find("graft: " + pid + ": warning: the process is not dumpable (it changed its user itself)"),
        std::string::npos)
        << a.err;
    EXPECT_EQ(ask(t, "tick", "work "), "work 1");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// Descriptors of /proc/.../syscall files the process holds now (root reads any fd directory).
static size_t syscall_file_descriptors(pid_t pid) {
    size_t n = 0;
    std::error_code ec;
    for (auto &e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        const auto target = std::filesystem::read_symlink(e.path(), ec).string();
        if (target.size() > 8 && target.compare(target.size() - 8, 8, "/syscall") == 0) n++;
    }
    return n;
}

// The daemon that switched users: `graft` (root) opens its threads' /proc files and passes them
// to the agent with each command that starts a transition, so blocked threads are checked where
// they stand as in any other process. Every thread is blocked without a timeout: the transitions
// must complete without the signal (a signal would make epoll_wait return EINTR), and the passed
// descriptors must be closed once the transition ended.
TEST(Attach, NonDumpableDaemonsBlockedThreadsAreCheckedWhereTheyStand) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to start a process that switches users";
#if defined(GRAFT_TEST_AGENT_ASAN)
    GTEST_SKIP() << "an ASan-built agent cannot start in a non-dumpable process";
#endif
    Target t(prog_path("attach_idle"), {"nobody"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(graft_cmd({"attach", pid}).rc, 0);
    ASSERT_TRUE(wait_all_blocked(t.pid()));

    Cmd load;
    ASSERT_NO_FATAL_FAILURE(patch_and_revert(t, &load, [&] {
        // Threads born after the files were passed get theirs with the next command.
        ASSERT_EQ(ask(t, "spawn", "spawned "), "spawned 3");
        ASSERT_TRUE(wait_all_blocked(t.pid()));
    }));
    EXPECT_EQ(load.err.find("warning"), std::string::npos) << load.err;
    for (auto &l : log_lines(t.pid())) {
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
        EXPECT_EQ(l.find("Permission denied"), std::string::npos) << l;
    }
    EXPECT_EQ(ask(t, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0");
    // The agent closes the descriptors once the transition they served has ended (its worker
    // looks at least once a second).
    size_t left = syscall_file_descriptors(t.pid());
    for (auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
         left != 0 && std::chrono::steady_clock::now() < end; left = syscall_file_descriptors(t.pid()))
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(left, 0u);
    ASSERT_EQ(graft_cmd({"unload", pid, "no_disturbance_fix"}).rc, 0);
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

// The borrowed thread gets back exactly what it had: errno (which dlopen overwrites), the vector
// registers (%xmm15, the upper half of %ymm14), and every other register; over several processes
// so that threads are caught at many points of their loops.
TEST(Attach, BorrowedThreadsGetTheirErrnoAndVectorRegistersBack) {
    for (int i = 0; i < 8; i++) {
        // A log file that cannot be opened: the agent's start-up fails a system call on the
        // borrowed thread, which sets errno.
        Target t(prog_path("attach_regs"), {"3"}, {"GRAFT_LOG_FILE=/nonexistent/graft.log"}, false);
        ASSERT_GE(t.wait_line("ready"), 0);
        counts_until(t, [](std::map<std::string, long> &c) { return c["passes"] > 0; });  // spinners spin
        Cmd a = graft_cmd({"attach", std::to_string(t.pid()), "--json"});
        ASSERT_EQ(a.rc, 0) << a.err;
        EXPECT_EQ(nlohmann::json::parse(a.out)["borrowed"], "running") << a.out;
        // Every spinner, the borrowed one included, runs several passes of checks after it.
        auto before = ask_counts(t, "counts", "counts ");
        auto after = counts_until(
            t, [&](std::map<std::string, long> &c) { return c["passes"] >= before["passes"] + 30; });
        EXPECT_GT(after["passes"], before["passes"]) << "the spinners stopped";
        EXPECT_EQ(after["violations"], 0) << "round " << i << ": " << a.out;
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0);
    }
}

TEST(Attach, RefusalsLeaveTheProcessAsItWas) {
    Target st(prog_path("attach_static"), {}, {}, /*under_graft=*/false);
    ASSERT_GE(st.wait_line("ready"), 0);
    const std::string spid = std::to_string(st.pid());
    expect_refusal(graft_cmd({"attach", spid}), {"attach " + spid + ": ", "statically linked"});
    expect_refusal(graft_cmd({"load", spid, patch_path("basic_fix")}),
                   {"attach " + spid + ": ", "libc.so.6"});
    EXPECT_EQ(ask(st, "tick", "tick"), "tick");

    Target t(prog_path("basic"), {"2"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    const std::string pid = std::to_string(t.pid());
    // This test's thread traces the target's main thread, as a debugger would.
    ASSERT_EQ(ptrace(PTRACE_SEIZE, t.pid(), nullptr, nullptr), 0) << std::strerror(errno);
    expect_refusal(graft_cmd({"attach", pid}),
                   {"attach " + pid + ": ", "already traced by process " + std::to_string(getpid())});
    int ws = 0;
    ASSERT_EQ(ptrace(PTRACE_INTERRUPT, t.pid(), nullptr, nullptr), 0);
    ASSERT_EQ(waitpid(t.pid(), &ws, __WALL), t.pid());
    ASSERT_EQ(ptrace(PTRACE_DETACH, t.pid(), nullptr, nullptr), 0);
    EXPECT_EQ(ask(t, "tick", "greet "), "greet 1");
    EXPECT_FALSE(agent_mapped(t.pid()));

    expect_refusal(graft_cmd({"attach", "999999999"}), {"attach 999999999: no such process"});
    // Another user (nobody) may not trace root's process.
    if (geteuid() == 0) {
        Cmd other =
            run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", graft_bin(), "attach", pid});
        expect_refusal(other, {"attach " + pid + ": no permission to trace it"});
        EXPECT_FALSE(agent_mapped(t.pid()));
        EXPECT_EQ(ask(t, "tick", "greet "), "greet 1");
    }
    st.send("quit\n");
    t.send("quit\n");
    EXPECT_EQ(st.wait_exit(), 0);
    EXPECT_EQ(t.wait_exit(), 0);
}

// `graft attach` killed with SIGKILL at random points: the process keeps serving, and a later
// `graft load` finds it either attached or attachable. The kill times are drawn over the length
// of one whole attach on this machine (a sanitizer build is slower), so that kills land before,
// during and after the thread is borrowed; how many landed after the agent got in is reported,
// not asserted (it depends on timing).
TEST(Attach, KilledAttachLeavesTheProcessServing) {
    const int rounds = stress_long() ? 200 : scaled(30, 10);
    double attach_us = 0;
    {
        Target t(prog_path("basic"), {"3"}, {}, /*under_graft=*/false);
        ASSERT_GE(t.wait_line("ready"), 0);
        const auto t0 = std::chrono::steady_clock::now();
        ASSERT_EQ(graft_cmd({"attach", std::to_string(t.pid())}).rc, 0);
        attach_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
        t.send("quit\n");
        ASSERT_EQ(t.wait_exit(), 0);
    }
    std::mt19937 rng(12345);
    std::uniform_int_distribution<int> delay_us(0, static_cast<int>(attach_us * 1.2));
    int loaded_before_kill = 0;
    for (int i = 0; i < rounds; i++) {
        Target t(prog_path("basic"), {"3"}, {}, /*under_graft=*/false);
        ASSERT_GE(t.wait_line("ready"), 0);
        const std::string pid = std::to_string(t.pid());
        std::string bin = graft_bin();
        char *argv[] = {bin.data(), const_cast<char *>("attach"), const_cast<char *>(pid.c_str()), nullptr};
        posix_spawn_file_actions_t quiet;
        posix_spawn_file_actions_init(&quiet);
        posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
        pid_t g = -1;
        ASSERT_EQ(posix_spawn(&g, bin.c_str(), &quiet, nullptr, argv, environ), 0);
        posix_spawn_file_actions_destroy(&quiet);
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
        kill(g, SIGKILL);
        int ws = 0;
        waitpid(g, &ws, 0);
        ASSERT_EQ(ask(t, "tick", "greet "), "greet 1") << "round " << i << ": " << target_state(t);
        if (agent_mapped(t.pid())) loaded_before_kill++;
        Cmd load = graft_cmd({"load", pid, patch_path("basic_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << i << ": " << load.err;
        ASSERT_EQ(ask(t, "tick", "greet "), "greet 2") << "round " << i;
        t.send("quit\n");
        ASSERT_EQ(t.wait_exit(), 0) << "round " << i;
    }
    RecordProperty("kills_after_the_agent_got_in", loaded_before_kill);
    std::cout << "kills after the agent got in: " << loaded_before_kill << " of " << rounds
              << " (one attach: " << static_cast<long>(attach_us) << " us)" << std::endl;
}

// A process that confines itself with a seccomp filter: a filter that refuses a call the agent
// needs (membarrier) gets a one-line refusal naming the call, and the process is left as it was;
// a filter that allows the agent's calls does not stand in the way.
TEST(Attach, SeccompFilterThatForbidsTheAgentIsRefused) {
    if (geteuid() != 0) GTEST_SKIP() << "reading a seccomp filter needs CAP_SYS_ADMIN";
    SigpipeBlocked sp;
    Target deny(prog_path("attach_seccomp"), {"deny-membarrier"}, {}, /*under_graft=*/false);
    ASSERT_GE(deny.wait_line("ready"), 0) << deny.all_output();
    const std::string pid = std::to_string(deny.pid());
    // The filter can be read only from a stopped thread: the refusal follows the attach's first line.
    Cmd c = graft_cmd({"attach", pid});
    EXPECT_NE(c.rc, 0);
    EXPECT_EQ(
        split_lines(c.err),
        std::vector<std::string>({"graft: " + pid + ": attaching the agent",
                                  "graft: attach " + pid +
                                      ": its seccomp filter forbids membarrier, which the agent needs (the "
                                      "filter would fail it with Operation not permitted): Operation not "
                                      "permitted"}))
        << c.err;
    EXPECT_FALSE(agent_mapped(deny.pid()));
    EXPECT_EQ(ask(deny, "tick", "work "), "work 1");

    Target allow(prog_path("attach_seccomp"), {"allow-all"}, {}, /*under_graft=*/false);
    ASSERT_GE(allow.wait_line("ready"), 0) << allow.all_output();
    patch_cycles(allow, 2);
    deny.send("quit\n");
    allow.send("quit\n");
    EXPECT_EQ(deny.wait_exit(), 0);
    EXPECT_EQ(allow.wait_exit(), 0);
}

// systemd's MemoryDenyWriteExecute= is a seccomp filter (EPERM for mprotect with PROT_EXEC and mmap
// with PROT_WRITE|PROT_EXEC): the attach is not refused, and the agent patches without ever making
// code writable (its functions' entries rewritten, the bytes written through /proc/self/mem).
TEST(Attach, SystemdMemoryDenyWriteExecuteFilterIsPatchedWithoutWritableCode) {
    if (geteuid() != 0) GTEST_SKIP() << "reading a seccomp filter needs CAP_SYS_ADMIN";
    Target t(prog_path("attach_seccomp"), {"deny-wx"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    const std::string pid = std::to_string(t.pid());
    Cmd load = graft_cmd({"load", pid, patch_path("no_disturbance_fix")});
    ASSERT_EQ(load.rc, 0) << load.err << target_state(t);
    EXPECT_EQ(split_lines(load.err), std::vector<std::string>{"graft: " + pid + ": attaching the agent"});
    EXPECT_EQ(ask(t, "tick", "work "), "work 2");
    auto st = status(t.pid());
    ASSERT_FALSE(st["patches"].empty()) << st.dump();
    for (auto &o : st["patches"][0]["objects"])
        for (auto &f : o["funcs"]) EXPECT_EQ(f["entry"], "rewritten") << f.dump();
    Cmd dis = graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    EXPECT_EQ(ask(t, "tick", "work "), "work 1");
    ASSERT_EQ(graft_cmd({"unload", pid, "no_disturbance_fix"}).rc, 0);
    patch_cycles(t, 2);
    for (auto &l : log_lines(t.pid())) EXPECT_EQ(l.find("cannot"), std::string::npos) << l;
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
}
