// User story: graft runs inside valuable processes, on machines with other users. Only a user
// who could ptrace a process controls it (its own user while it is dumpable, or root); nobody
// else gets more than a one-line refusal, and nothing another user does to the control socket
// (idle connections, a client that stops reading, a fake agent bound on a process's name, a
// descriptor of some other process's memory) delays the owner's commands or fools them.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char *kNobody = "65534";

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

std::vector<std::string> as_nobody_argv(const std::vector<std::string> &cmd) {
    std::vector<std::string> argv{"setpriv", std::string("--reuid=") + kNobody,
                                  std::string("--regid=") + kNobody, "--clear-groups"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
}

Cmd graft_as_nobody(const std::vector<std::string> &args) {
    std::vector<std::string> cmd{graft_bin()};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return run(as_nobody_argv(cmd), 60);
}

bool needs_root() {
    return geteuid() != 0;
}

// A connection to the control socket of `pid` (non-blocking), or -1.
int connect_agent(pid_t pid) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string name = "graft/" + std::to_string(pid);
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), len) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

// Sends `line` with `pass_fd` attached (SCM_RIGHTS; none if < 0), as the graft command does.
bool send_request(int fd, const std::string &line, int pass_fd) {
    iovec iov{const_cast<char *>(line.data()), line.size()};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (pass_fd >= 0) {
        m.msg_control = ctl;
        m.msg_controllen = sizeof ctl;
        cmsghdr *h = CMSG_FIRSTHDR(&m);
        h->cmsg_level = SOL_SOCKET;
        h->cmsg_type = SCM_RIGHTS;
        h->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(h), &pass_fd, sizeof(int));
    }
    return sendmsg(fd, &m, MSG_NOSIGNAL) == static_cast<ssize_t>(line.size());
}

// The first answer line on `fd` within `timeout` s ("" if none).
std::string read_answer(int fd, double timeout = 10) {
    auto t0 = Clock::now();
    std::string got;
    while (seconds_since(t0) < timeout) {
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) break;
        got.append(buf, static_cast<size_t>(n));
        if (auto nl = got.find('\n'); nl != std::string::npos) return got.substr(0, nl);
    }
    return "";
}

// One raw request with `pass_fd` attached: the agent's answer, parsed (null if none).
nlohmann::json raw_request(pid_t pid, const std::string &line, int pass_fd) {
    int fd = connect_agent(pid);
    if (fd < 0) return nullptr;
    // Connected, but the agent may accept later: wait until the socket takes our bytes.
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 5000);
    bool sent = send_request(fd, line, pass_fd);
    std::string a = read_answer(fd);
    close(fd);
    if (!sent || a.empty()) return nullptr;
    try {
        return nlohmann::json::parse(a);
    } catch (...) {
        return nullptr;
    }
}

struct AccessTarget {
    SigpipeBlocked no_sigpipe;
    Target t;
    std::string pid;
    bool ok = false;
    explicit AccessTarget(const std::string &prog = prog_path("access"),
                          const std::vector<std::string> &args = {}, bool under_graft = true)
        : t(prog, args, {"GRAFT_SIGNAL_TIMEOUT=600"}, under_graft) {
        if (t.wait_line("ready") < 0 || !t.wait_agent()) return;
        pid = std::to_string(t.pid());
        ok = true;
    }
};

// `graft status` as the owner (root here), timed.
double timed_status(const std::string &pid, Cmd *out) {
    auto t0 = Clock::now();
    *out = graft_cmd({"status", pid, "--json"}, 30);
    return seconds_since(t0);
}

// A process of another user (nobody) that holds `n` connections to the control socket of `pid`
// without sending anything, until killed. Returns its pid once the connections are made.
pid_t hold_connections_as_nobody(pid_t pid, int n) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::string name = "graft/" + std::to_string(pid);
    std::memcpy(a.sun_path + 1, name.data(), name.size());
    auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return -1;
    pid_t child = fork();
    if (child == 0) {
        // Only async-signal-safe calls from here: the parent has threads.
        if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(1);
        for (int i = 0; i < n; i++) {
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&a), len) != 0) _exit(2);
        }
        (void)!write(ready[1], "k", 1);
        for (;;) pause();
    }
    close(ready[1]);
    char c;
    bool ok = read(ready[0], &c, 1) == 1;
    close(ready[0]);
    if (!ok) {
        waitpid(child, nullptr, 0);
        return -1;
    }
    return child;
}

void stop(pid_t child) {
    if (child <= 0) return;
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
}

}  // namespace

// Another user holding 40 idle connections cannot delay the owner: each is refused on its
// credentials at accept, before a byte is read. 40 idle connections of the owner's own user
// (which pass that first check) cannot delay it either: every client has its own deadline.
TEST(Access, IdleConnectionsDelayNobody) {
    if (needs_root()) GTEST_SKIP() << "needs root to act as another user";
    AccessTarget a;
    ASSERT_TRUE(a.ok) << a.t.all_output();
    pid_t holder = hold_connections_as_nobody(a.t.pid(), 40);
    ASSERT_GT(holder, 0) << "could not open 40 connections as nobody";
    for (int i = 0; i < 3; i++) {
        Cmd st;
        double took = timed_status(a.pid, &st);
        EXPECT_EQ(st.rc, 0) << st.err;
        EXPECT_LT(took, 1.0) << "`graft status` took " << took << " s while another user held 40 connections";
    }
    stop(holder);

    // The owner's own user: 40 connections that send nothing.
    std::vector<int> idle;
    for (int i = 0; i < 40; i++) {
        int fd = connect_agent(a.t.pid());
        ASSERT_GE(fd, 0);
        idle.push_back(fd);
    }
    for (int i = 0; i < 3; i++) {
        Cmd st;
        double took = timed_status(a.pid, &st);
        EXPECT_EQ(st.rc, 0) << st.err;
        EXPECT_LT(took, 1.0) << "`graft status` took " << took << " s while 40 idle connections were open";
    }
    // Each idle connection is answered with an error or hung up on, in bounded time.
    for (int fd : idle) {
        pollfd p{fd, POLLIN, 0};
        EXPECT_EQ(poll(&p, 1, 10000), 1) << "the agent never gave up on an idle client";
        close(fd);
    }
    a.t.send("quit\n");
    EXPECT_EQ(a.t.wait_exit(), 0);
}

// Another user binds "@graft/<pid>" of a process that runs no agent and answers "ok" to
// everything: graft checks who holds the socket and refuses to talk to it.
TEST(Access, FakeAgentIsRefused) {
    if (needs_root()) GTEST_SKIP() << "needs root to act as another user";
    SigpipeBlocked no_sigpipe;
    Target victim("sleep", {"600"}, {}, false);
    ASSERT_GT(victim.pid(), 0);
    std::string pid = std::to_string(victim.pid());
    Target fake("setpriv",
                {std::string("--reuid=") + kNobody, std::string("--regid=") + kNobody, "--clear-groups",
                 prog_path("access_fake_agent"), pid},
                {}, false);
    ASSERT_GE(fake.wait_line("listening"), 0) << fake.all_output();
    for (auto args : std::vector<std::vector<std::string>>{{"status", pid},
                                                           {"list", pid, "--json"},
                                                           {"load", pid, patch_path("bad_input_fix")},
                                                           {"log", pid}}) {
        SCOPED_TRACE(args[0]);
        Cmd c = graft_cmd(args, 30);
        expect_refusal(c, {"control socket of process " + pid,
                           "held by process " + std::to_string(fake.pid()), "Operation not permitted"});
    }
    // `graft ps` does not list it either.
    Cmd ps = graft_cmd({"ps", "--json"}, 60);
    ASSERT_EQ(ps.rc, 0) << ps.err;
    for (auto &p : nlohmann::json::parse(ps.out)) EXPECT_NE(p["pid"].get<int>(), victim.pid()) << ps.out;
}

// A target of another user (nobody): nobody controls it while it is dumpable; once it is not (as
// a daemon started as root that dropped its privileges), nobody is refused and root is served.
TEST(Access, NonDumpableTargetRefusesItsOwnUser) {
    if (needs_root()) GTEST_SKIP() << "needs root to act as another user";
    std::vector<std::string> argv = as_nobody_argv({graft_bin(), "run", "--", prog_path("access")});
    AccessTarget a(argv[0], std::vector<std::string>(argv.begin() + 1, argv.end()), false);
    ASSERT_TRUE(a.ok) << a.t.all_output();
    Cmd own = graft_as_nobody({"status", a.pid, "--json"});
    EXPECT_EQ(own.rc, 0) << "its own user cannot control a dumpable process: " << own.err;
    Cmd ps = graft_as_nobody({"ps", "--json"});
    EXPECT_NE(ps.out.find(a.pid), std::string::npos) << ps.out << ps.err;

    size_t from = a.t.line_count();
    a.t.send("nodump\n");
    ASSERT_GE(a.t.wait_line("nodump done", 30, from), 0) << a.t.all_output();
    for (auto args : std::vector<std::vector<std::string>>{{"status", a.pid},
                                                           {"threads", a.pid},
                                                           {"log", a.pid},
                                                           {"load", a.pid, patch_path("bad_input_fix")}}) {
        SCOPED_TRACE(args[0]);
        Cmd c = graft_as_nobody(args);
        expect_refusal(c, {"ptrace", "Permission denied"});
    }
    Cmd ps2 = graft_as_nobody({"ps", "--json"});
    EXPECT_EQ(ps2.out.find(a.pid), std::string::npos)
        << "ps lists a process its user cannot control: " << ps2.out;
    Cmd root = graft_cmd({"status", a.pid, "--json"});
    EXPECT_EQ(root.rc, 0) << "root is refused: " << root.err;
    a.t.send("quit\n");
    EXPECT_EQ(a.t.wait_exit(), 0);
}

// A client asks for a large answer and never reads it: the worker does not wait for it; the
// owner's other requests are answered promptly, and the stalled client is dropped in bounded time.
TEST(Access, ClientThatStopsReadingDelaysNobody) {
    AccessTarget a;
    ASSERT_TRUE(a.ok) << a.t.all_output();
    size_t from = a.t.line_count();
    a.t.send("fill 600\n");
    ASSERT_GE(a.t.wait_line("filled", 30, from), 0) << a.t.all_output();

    int fd = connect_agent(a.t.pid());
    ASSERT_GE(fd, 0);
    int tiny = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof tiny);
    int mem = open(("/proc/" + a.pid + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(mem, 0) << strerror(errno);
    pollfd w{fd, POLLOUT, 0};
    poll(&w, 1, 5000);
    ASSERT_TRUE(send_request(fd, "{\"op\":\"log\",\"since\":0}\n", mem));
    close(mem);
    // The answer (500 lines of ~900 bytes) is far larger than a socket buffer.
    for (int i = 0; i < 5; i++) {
        Cmd st;
        double took = timed_status(a.pid, &st);
        EXPECT_EQ(st.rc, 0) << st.err;
        EXPECT_LT(took, 1.0) << "`graft status` took " << took << " s while a client did not read its answer";
    }
    // The stalled client is hung up on (its answer's deadline), never served forever.
    auto t0 = Clock::now();
    bool hung_up = false;
    while (!hung_up && seconds_since(t0) < 30) {
        pollfd p{fd, 0, 0};
        if (poll(&p, 1, 100) == 1 && (p.revents & (POLLHUP | POLLERR))) hung_up = true;
    }
    EXPECT_TRUE(hung_up) << "the agent kept a client that did not read its answer";
    close(fd);
    Cmd st = graft_cmd({"status", a.pid}, 30);
    EXPECT_EQ(st.rc, 0) << st.err;
    a.t.send("quit\n");
    EXPECT_EQ(a.t.wait_exit(), 0);
}

// The proof of access is a descriptor of the target's own memory: one of any other process's
// memory (which the client may well open), or none, is refused; the target's own is served.
TEST(Access, DescriptorOfAnotherProcessIsRefused) {
    AccessTarget a;
    ASSERT_TRUE(a.ok) << a.t.all_output();
    SigpipeBlocked no_sigpipe;
    Target other("sleep", {"600"}, {}, false);
    ASSERT_GT(other.pid(), 0);
    const std::string status = "{\"op\":\"status\"}\n";

    int own = open(("/proc/" + a.pid + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(own, 0) << strerror(errno);
    auto ok = raw_request(a.t.pid(), status, own);
    close(own);
    EXPECT_EQ(ok.value("ok", false), true) << ok.dump();

    auto expect_eacces = [](const nlohmann::json &j, const std::string &what) {
        EXPECT_EQ(j.value("ok", true), false) << what << ": " << j.dump();
        EXPECT_EQ(j.value("errno", 0), EACCES) << what << ": " << j.dump();
    };
    for (std::string path : {"/proc/" + std::to_string(other.pid()) + "/mem", std::string("/proc/self/mem"),
                             "/proc/" + a.pid + "/maps", std::string("/dev/null")}) {
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
        expect_eacces(raw_request(a.t.pid(), status, fd), path);
        close(fd);
    }
    expect_eacces(raw_request(a.t.pid(), status, -1), "no descriptor");
    Cmd st = graft_cmd({"status", a.pid}, 30);
    EXPECT_EQ(st.rc, 0) << st.err;
    a.t.send("quit\n");
    EXPECT_EQ(a.t.wait_exit(), 0);
}
