// User story: a real server nobody wrote for graft — memcached 1.6.18 from Debian 12's source
// package, built as Debian builds it but with `graft flags target` (prepare.sh, run by
// scripts/test.sh) — runs from its normal command line, started without graft, while clients
// store and read back values without pause. `graft load` attaches and patches it, `graft disable`
// takes the patch back, `graft unload` removes it, cycle after cycle: the `version` command shows
// each state, and no client request ever fails or returns a wrong value.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::string debian_dir() {
    const char *d = std::getenv("GRAFT_DEBIAN_DIR");
    return d && *d ? d : "/var/tmp/graft-debian";
}

int free_port() {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a);
    getsockname(s, reinterpret_cast<sockaddr *>(&a), &len);
    close(s);
    return ntohs(a.sin_port);
}

// One text-protocol connection, every read bounded by a timeout.
class Conn {
  public:
    explicit Conn(int port) {
        fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        timeval tv{10, 0};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ok_ = connect(fd_, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
    }
    ~Conn() { close(fd_); }
    bool ok() const { return ok_; }
    bool send_all(const std::string &s) {
        for (size_t done = 0; done < s.size();) {
            ssize_t n = send(fd_, s.data() + done, s.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return false;
            done += static_cast<size_t>(n);
        }
        return true;
    }
    // Reads until the buffer ends with `end`; "" on error or timeout.
    std::string read_until(const std::string &end) {
        std::string got;
        char buf[4096];
        while (got.size() < end.size() || got.compare(got.size() - end.size(), end.size(), end) != 0) {
            ssize_t n = recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return "";
            got.append(buf, static_cast<size_t>(n));
        }
        return got;
    }

  private:
    int fd_ = -1;
    bool ok_ = false;
};

std::string version(int port) {
    Conn c(port);
    if (!c.ok() || !c.send_all("version\r\n")) return "<no connection>";
    std::string l = c.read_until("\r\n");
    return l.empty() ? "<no answer>" : l.substr(0, l.size() - 2);
}

// A client that stores and reads back its own keys until told to stop; counts what went wrong.
struct Client {
    std::atomic<bool> stop{false};
    std::atomic<long> ops{0}, errors{0};
    std::thread th;
    Client(int port, int id) {
        th = std::thread([this, port, id] {
            Conn c(port);
            if (!c.ok()) {
                errors++;
                return;
            }
            for (long i = 0; !stop.load(); i++) {
                const std::string key = "k" + std::to_string(id) + "_" + std::to_string(i % 100);
                const std::string val =
                    "v" + std::to_string(i) + std::string(static_cast<size_t>(i % 50), 'x');
                const std::string len = std::to_string(val.size());
                if (!c.send_all("set " + key + " 0 0 " + len + "\r\n" + val + "\r\n") ||
                    c.read_until("\r\n") != "STORED\r\n" || !c.send_all("get " + key + "\r\n") ||
                    c.read_until("END\r\n") != "VALUE " + key + " 0 " + len + "\r\n" + val + "\r\nEND\r\n") {
                    errors++;
                    return;  // the connection's state is unknown after an error
                }
                ops++;
            }
        });
    }
    ~Client() {
        stop = true;
        th.join();
    }
};

// Starts `server` on the loopback port, 4 threads, without graft. Root runs it as nobody from the
// start, as its systemd unit does with User=: a daemon that switches users itself (-u) is not
// dumpable (docs/limitations.md).
std::unique_ptr<Target> start_server(const std::string &server, int port) {
    const std::vector<std::string> args = {"-l", "127.0.0.1", "-p", std::to_string(port),
                                           "-U", "0",         "-t", "4"};
    if (geteuid() != 0) return std::make_unique<Target>(server, args, std::vector<std::string>{}, false);
    std::vector<std::string> argv = {"--reuid=65534", "--regid=65534", "--clear-groups", server};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<Target>("/usr/bin/setpriv", argv, std::vector<std::string>{},
                                    /*under_graft=*/false);
}

}  // namespace

TEST(DebianMemcached, AttachPatchAndUnpatchUnderLoadWithNoClientError) {
    const std::string dir = debian_dir();
    const std::string server = dir + "/memcached-1.6.18/memcached", fix = dir + "/memcached_version_fix.so";
    struct stat st {};
    ASSERT_EQ(stat(server.c_str(), &st), 0)
        << server << " is missing: run tests/scenarios/debian_memcached/prepare.sh "
        << "(scripts/test.sh does)";
    ASSERT_EQ(stat(fix.c_str(), &st), 0) << fix << " is missing: run prepare.sh";
    const int port = free_port();
    auto t_owner = start_server(server, port);
    Target &t = *t_owner;
    std::string v;
    for (int i = 0; i < 100 && (v = version(port)).rfind("VERSION", 0) != 0; i++) usleep(50000);
    ASSERT_EQ(v, "VERSION 1.6.18") << t.all_output();

    const std::string pid = std::to_string(t.pid());
    {
        Client a(port, 1), b(port, 2);
        for (int cycle = 0; cycle < 20; cycle++) {
            SCOPED_TRACE("cycle " + std::to_string(cycle));
            Cmd load = graft_cmd({"load", pid, fix, "--timeout", "60"});
            ASSERT_EQ(load.rc, 0) << load.out << load.err;
            EXPECT_EQ(load.err.find("attaching the agent") != std::string::npos, cycle == 0) << load.err;
            EXPECT_EQ(version(port), "VERSION 1.6.18-graft");
            Cmd dis = graft_cmd({"disable", pid, "memcached_version_fix", "--wait", "--timeout", "60"});
            ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
            EXPECT_EQ(version(port), "VERSION 1.6.18");
            Cmd unl = graft_cmd({"unload", pid, "memcached_version_fix"});
            ASSERT_EQ(unl.rc, 0) << unl.err;
        }
        const long before = a.ops + b.ops;
        for (int i = 0; i < 100 && a.ops + b.ops < before + 100; i++) usleep(10000);
        EXPECT_EQ(a.errors + b.errors, 0) << "client requests that failed or returned a wrong value";
        EXPECT_GT(a.ops + b.ops, before) << "the clients stopped making progress";
        std::cout << "20 cycles of load, disable and unload; " << a.ops + b.ops << " client set/get pairs, "
                  << a.errors + b.errors << " errors" << std::endl;
    }
    EXPECT_EQ(version(port), "VERSION 1.6.18");
}

// User story (code nobody built for graft): Debian's own memcached binary, stripped as the package
// ships it, started normally with no graft anywhere, serving clients. Its out_string() has no
// patchable entry and no symbol in the binary. The patch names it all the same: its symbols come
// from an unstripped rebuild of Debian's source package (dpkg-buildpackage, as the maintainers
// build it), whose build-id differs but whose code and data graft finds identical to the running
// binary's; graft rewrites the function's own entry while the clients keep going. Without the
// rebuild, or with another build (graft's flags), the load is refused with the reason and the
// server keeps serving.
TEST(DebianMemcached, StrippedPackagedServerPatchedWithSymbolsFromItsRebuild) {
    const std::string dir = debian_dir();
    const std::string server = dir + "/pkg/usr/bin/memcached", rebuild = dir + "/memcached-deb/memcached",
                      other = dir + "/memcached-1.6.18/memcached", fix = dir + "/memcached_pkg_fix.so";
    struct stat st {};
    for (const auto &f : {server, rebuild, other, fix})
        ASSERT_EQ(stat(f.c_str(), &st), 0)
            << f << " is missing: run tests/scenarios/debian_memcached/prepare.sh "
            << "(scripts/test.sh does)";
    const int port = free_port();
    auto t_owner = start_server(server, port);
    Target &t = *t_owner;
    std::string v;
    for (int i = 0; i < 100 && (v = version(port)).rfind("VERSION", 0) != 0; i++) usleep(50000);
    ASSERT_EQ(v, "VERSION 1.6.18") << t.all_output();

    const std::string pid = std::to_string(t.pid());
    {
        Client a(port, 1), b(port, 2);
        Cmd attach = graft_cmd({"attach", pid});
        ASSERT_EQ(attach.rc, 0) << attach.out << attach.err;
        // Stripped: out_string is not in .dynsym, and there is no debug file.
        Cmd bare = graft_cmd({"load", pid, fix});
        expect_refusal(bare, {"symbol 'out_string' not found in symbol table"});
        // graft's own build of the same source is another build: its code differs.
        Cmd wrong = graft_cmd({"load", pid, fix, "--symbols", other});
        expect_refusal(wrong, {"symbol 'out_string' not found in symbol table", "' is another build ("});
        EXPECT_EQ(version(port), "VERSION 1.6.18");
        for (int cycle = 0; cycle < 8; cycle++) {
            SCOPED_TRACE("cycle " + std::to_string(cycle));
            Cmd load = graft_cmd({"load", pid, fix, "--symbols", rebuild, "--timeout", "60"});
            ASSERT_EQ(load.rc, 0) << load.out << load.err;
            if (cycle == 0) {
                EXPECT_NE(
                    load.out.find("graft: symbols of '" + server + "' from '" + rebuild + "' (build-id "),
                    std::string::npos)
                    << load.out;
                EXPECT_NE(load.out.find(" bytes of code and data, identical)"), std::string::npos)
                    << load.out;
                auto s = status(t.pid());
                EXPECT_EQ(s["patches"][0]["objects"][0]["funcs"][0]["entry"], "rewritten") << s.dump();
            }
            EXPECT_EQ(version(port), "VERSION 1.6.18-graft");
            Cmd dis = graft_cmd({"disable", pid, "memcached_version_fix", "--wait", "--timeout", "60"});
            ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
            EXPECT_EQ(version(port), "VERSION 1.6.18");
            Cmd unl = graft_cmd({"unload", pid, "memcached_version_fix"});
            ASSERT_EQ(unl.rc, 0) << unl.err;
        }
        const long before = a.ops + b.ops;
        for (int i = 0; i < 100 && a.ops + b.ops < before + 100; i++) usleep(10000);
        EXPECT_EQ(a.errors + b.errors, 0) << "client requests that failed or returned a wrong value";
        EXPECT_GT(a.ops + b.ops, before) << "the clients stopped making progress";
        std::cout << "Debian's stripped memcached: 8 cycles of load, disable and unload; " << a.ops + b.ops
                  << " client set/get pairs, " << a.errors + b.errors << " errors" << std::endl;
    }
    EXPECT_EQ(version(port), "VERSION 1.6.18");
}

// graft diff on a real fix: Debian's debian/patches/0007-uninitialized-variables.patch (two static
// log parsers of logger.c), against memcached built from the same sources without it (prepare.sh,
// its compilation database written by Bear) and running as a server. The fix's two functions are
// found, the unfixed build matches the running server, the tree is left as it was; the server
// built with the fix is another build, and is refused by name.
TEST(DebianMemcached, GraftDiffFindsTheFunctionsOfDebiansOwnFixInTheRunningServer) {
    const std::string dir = debian_dir(), tree = dir + "/memcached-unfixed";
    const std::string fix = tree + "/debian/patches/0007-uninitialized-variables.patch";
    struct stat st {};
    ASSERT_EQ(stat((tree + "/memcached").c_str(), &st), 0) << tree << "/memcached is missing: run prepare.sh";
    ASSERT_EQ(stat((tree + "/compile_commands.json").c_str(), &st), 0) << "run prepare.sh";
    struct stat logger0 {};
    ASSERT_EQ(stat((tree + "/logger.c").c_str(), &logger0), 0);
    const int port = free_port();
    auto t_owner = start_server(tree + "/memcached", port);
    std::string v;
    for (int i = 0; i < 100 && (v = version(port)).rfind("VERSION", 0) != 0; i++) usleep(50000);
    ASSERT_EQ(v, "VERSION 1.6.18") << t_owner->all_output();
    const std::string pid = std::to_string(t_owner->pid());

    Cmd c = graft_cmd({"diff", "--source", tree, "--fix", fix, "--target", pid});
    ASSERT_EQ(c.rc, 0) << c.err;
    EXPECT_NE(c.out.find("graft: diff: unit 'logger.c': 2 function(s) changed, 0 new, 0 removed"),
              std::string::npos)
        << c.out;
    EXPECT_NE(c.out.find("changed\tfunction _logger_parse_cce: "), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("changed\tfunction _logger_parse_cne: "), std::string::npos) << c.out;
    EXPECT_NE(c.out.find("graft: diff: the before build matches '" + pid + "' (build-id "), std::string::npos)
        << c.out;
    struct stat logger1 {};
    ASSERT_EQ(stat((tree + "/logger.c").c_str(), &logger1), 0);
    EXPECT_EQ(logger1.st_size, logger0.st_size);
    EXPECT_EQ(logger1.st_mtim.tv_sec, logger0.st_mtim.tv_sec);
    EXPECT_EQ(logger1.st_mtim.tv_nsec, logger0.st_mtim.tv_nsec);

    Cmd other =
        graft_cmd({"diff", "--source", tree, "--fix", fix, "--target", dir + "/memcached-1.6.18/memcached"});
    EXPECT_EQ(other.rc, 1);
    EXPECT_NE(
        other.err.find("graft: diff: your build does not match the running binary: function _logger_parse_c"),
        std::string::npos)
        << other.err;
    EXPECT_EQ(version(port), "VERSION 1.6.18");

    // The patch made from Debian's fix, loaded while two clients check every answer and a watcher
    // of connection events (the lines the two fixed functions format) is attached; then disabled.
    char tmpl[] = "/tmp/graft-mc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    chmod(tmpl, 0755);
    const std::string so = std::string(tmpl) + "/mc_0007.so";
    Cmd p = graft_cmd({"diff", "--source", tree, "--fix", fix, "--target", pid, "-o", so});
    ASSERT_EQ(p.rc, 0) << p.err << p.out;
    EXPECT_NE(p.out.find("graft: diff: wrote '" + so + "': 2 function(s) of main replaced"),
              std::string::npos)
        << p.out;
    {
        Client a(port, 1), b(port, 2);
        // memcached's logger thread sometimes sleeps through the first watcher's registration
        // (seen in a few runs, before graft touched the process): a second watcher wakes it.
        std::unique_ptr<Conn> watcher;
        for (int attempt = 0; attempt < 3 && !watcher; attempt++) {
            auto w = std::make_unique<Conn>(port);
            ASSERT_TRUE(w->ok() && w->send_all("watch connevents\r\n"));
            if (w->read_until("\r\n") == "OK\r\n") watcher = std::move(w);
        }
        ASSERT_TRUE(watcher) << "memcached never confirmed a watcher";
        Conn &w = *watcher;
        Cmd l = graft_cmd({"load", pid, so});
        ASSERT_EQ(l.rc, 0) << l.err;
        EXPECT_EQ(version(port), "VERSION 1.6.18");  // a connection opened and closed: two events
        // Events of earlier connections (a watcher given up above) may come first; one read may
        // bring several lines.
        std::string events;
        for (int i = 0; i < 8 && (events.find("type=conn_new rip=127.0.0.1 rport=") == std::string::npos ||
                                  events.find("type=conn_close rip=127.0.0.1 rport=") == std::string::npos);
             i++) {
            const std::string more = w.read_until("\n");
            if (more.empty()) break;
            events += more;
        }
        EXPECT_NE(events.find("type=conn_new rip=127.0.0.1 rport="), std::string::npos) << events;
        EXPECT_NE(events.find("type=conn_close rip=127.0.0.1 rport="), std::string::npos) << events;
        Cmd d = graft_cmd({"disable", pid, "mc_0007"});
        EXPECT_EQ(d.rc, 0) << d.err;
        EXPECT_TRUE(wait_idle(t_owner->pid()));
        EXPECT_GT(a.ops.load() + b.ops.load(), 0);
        EXPECT_EQ(a.errors.load() + b.errors.load(), 0);
    }
    EXPECT_EQ(version(port), "VERSION 1.6.18");
    std::system(("rm -rf " + std::string(tmpl)).c_str());
}
