// User story: a service runs with DEBUGINFOD_URLS in its environment (Debian sets it for
// interactive shells, and services inherit it). Unwinding its threads during a transition must
// not make the agent ask a debuginfod server for debug information: that would be network
// traffic from inside someone else's process, with the agent's core lock held. A listener stands
// in for the server and counts the connections it gets: none is allowed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {
// A TCP listener on 127.0.0.1 that accepts and counts connections until stopped.
struct CountingListener {
    int fd = -1;
    int port = 0;
    std::atomic<int> connections{0};
    std::atomic<bool> stop{false};
    std::thread th;
    CountingListener() {
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), len) != 0 || listen(fd, 16) != 0 ||
            getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0)
            return;
        port = ntohs(a.sin_port);
        th = std::thread([this] {
            while (!stop.load()) {
                pollfd p{fd, POLLIN, 0};
                if (poll(&p, 1, 50) > 0) {
                    int c = accept(fd, nullptr, nullptr);
                    if (c >= 0) {
                        connections++;
                        close(c);
                    }
                }
            }
        });
    }
    ~CountingListener() {
        stop = true;
        if (th.joinable()) th.join();
        if (fd >= 0) close(fd);
    }
};
}  // namespace

TEST(NoNetwork, UnwindingNeverAsksDebuginfod) {
    SigpipeBlocked no_sigpipe;
    CountingListener server;
    ASSERT_GT(server.port, 0);
    char tmpl[] = "/tmp/graft-debuginfod-cache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port) + "/";
    {
        Target t(
            prog_path("nocfi_host"), {},
            {"DEBUGINFOD_URLS=" + url, "DEBUGINFOD_TIMEOUT=2", std::string("DEBUGINFOD_CACHE_PATH=") + tmpl});
        ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
        ASSERT_TRUE(t.wait_agent());
        const std::string pid = std::to_string(t.pid());
        t.send("block\n");
        long tid = tid_of(t, "waiting tid");
        ASSERT_GT(tid, 0) << t.all_output();
        // The waiter is unwound from /proc (libdwfl); its frame in libnocfi has no unwind table in
        // the file, which makes libdwfl look for separate debug information.
        ASSERT_EQ(graft_cmd({"load", pid, patch_path("nocfi_fix"), "--no-wait"}).rc, 0);
        bool checked = wait_status(t.pid(), [&](const nlohmann::json &st) {
            const nlohmann::json *e = pending_entry(st, tid);
            return e && !(*e)["reason"].get<std::string>().empty();
        });
        EXPECT_TRUE(checked) << status(t.pid()).dump();
        t.send("wake\n");
        EXPECT_GE(t.wait_line("woke"), 0) << t.all_output();
        EXPECT_TRUE(wait_idle(t.pid()));
        EXPECT_EQ(ask(t, "value", "value "), "value 2");
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
    }
    EXPECT_EQ(server.connections.load(), 0) << "the agent asked the debuginfod server";
    std::filesystem::remove_all(tmpl);
}
