// User story: an operator feeds graft something wrong — a patch for a symbol that does not exist,
// an ambiguous static symbol, a patch built for another program, a file that is no patch at all,
// a truncated patch, garbage on the control socket, a second load while a transition runs, a
// command from another user. Each is refused with one `graft: <what>: <why>` line, and the
// target is left exactly as it was: it keeps printing its original values, `graft status` shows
// no new patch, nothing of the refused patch stays mapped, and the agent's log shows nothing of
// it beyond what the kernel would print in the same case. The agent keeps working: a real load
// afterwards succeeds.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

const char *const kOriginal = "value 1 twin_a 10 twin_b 20";

// The program's line for one "tick".
std::string tick(Target &t) {
    size_t from = t.line_count();
    t.send("tick\n");
    int i = t.wait_line("value ", 30, from);
    if (i < 0) return "<no answer to tick>";
    return t.lines()[static_cast<size_t>(i)];
}

struct BadInputTarget {
    SigpipeBlocked no_sigpipe;
    // A long signal timeout: nothing here may depend on the transition signal.
    Target t{prog_path("bad_input"), {"2"}, {"GRAFT_SIGNAL_TIMEOUT=600"}};
    std::string pid;
    bool ok = false;
    bool died = false;
    BadInputTarget() {
        if (t.wait_line("ready") < 0 || !t.wait_agent()) return;
        pid = std::to_string(t.pid());
        ok = tick(t) == kOriginal;
    }
};

std::string maps_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The target is as it was: original values, no patch, nothing of `file` mapped, and the log grew
// only by lines from `allowed` (the kernel's own messages for the same refusal).
void expect_unchanged(BadInputTarget &b, const std::vector<std::string> &log_before,
                      const std::set<std::string> &allowed, const std::string &file = "") {
    std::string now = tick(b.t);
    if (now == "<no answer to tick>") {
        int st = b.t.wait_exit(5);
        b.died = true;
        FAIL() << "the target died (wait status " << st << ", above 128: killed by signal " << st - 128
               << ")\n"
               << b.t.all_output();
    }
    EXPECT_EQ(now, kOriginal);
    auto st = status(b.t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump();
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump();
    EXPECT_TRUE(st["transition"].is_null()) << st.dump();
    auto log = log_lines(b.t.pid());
    ASSERT_GE(log.size(), log_before.size());
    for (size_t i = 0; i < log_before.size(); i++) EXPECT_EQ(log[i], log_before[i]);
    for (size_t i = log_before.size(); i < log.size(); i++)
        EXPECT_TRUE(allowed.count(log[i])) << "unexpected log line for a refused patch: " << log[i];
    if (!file.empty()) {
        char real[4096];
        std::string path = realpath(file.c_str(), real) ? real : file;
        EXPECT_EQ(maps_of(b.t.pid()).find(path), std::string::npos) << path << " is still mapped";
    }
}

// After a refusal, the agent still loads a real patch (and unloads it again).
void expect_good_load_works(BadInputTarget &b) {
    Cmd load = graft_cmd({"load", b.pid, patch_path("bad_input_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_EQ(tick(b.t), "value 2 twin_a 10 twin_b 20");
    Cmd dis = graft_cmd({"disable", b.pid, "bad_input_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    EXPECT_EQ(tick(b.t), kOriginal);
    Cmd unl = graft_cmd({"unload", b.pid, "bad_input_fix"});
    EXPECT_EQ(unl.rc, 0) << unl.err;
}

void quit(BadInputTarget &b) {
    b.t.send("quit\n");
    EXPECT_EQ(b.t.wait_exit(), 0) << b.t.all_output();
}

// A scratch directory for files made by a test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/graft-bad-input-XXXXXX";
        path = mkdtemp(tmpl) ? tmpl : "/tmp";
    }
    ~TempDir() {
        if (path != "/tmp") run({"rm", "-rf", path});
    }
};

}  // namespace

TEST(BadInput, MissingSymbol) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    auto log0 = log_lines(b.t.pid());
    Cmd c = graft_cmd({"load", b.pid, patch_path("bad_input_missing")});
    expect_refusal(c, {"bad_input_missing", "object 'main'",
                       "symbol 'no_such_function' not found in symbol table", "Invalid argument"});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0,
                                             {"graft: symbol 'no_such_function' not found in symbol table"},
                                             patch_path("bad_input_missing")));
    expect_good_load_works(b);
    quit(b);
}

TEST(BadInput, AmbiguousStaticSymbol) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    auto log0 = log_lines(b.t.pid());

    // sympos 0: the name must be unique, and it is not.
    Cmd c0 = graft_cmd({"load", b.pid, patch_path("bad_input_twin0")});
    expect_refusal(c0, {"bad_input_twin0", "unresolvable ambiguity for symbol 'twin' in object 'main'"});
    ASSERT_NO_FATAL_FAILURE(
        expect_unchanged(b, log0, {"graft: unresolvable ambiguity for symbol 'twin' in object 'main'"},
                         patch_path("bad_input_twin0")));

    // sympos 3: there are only two.
    log0 = log_lines(b.t.pid());
    Cmd c3 = graft_cmd({"load", b.pid, patch_path("bad_input_twin3")});
    expect_refusal(c3, {"bad_input_twin3", "symbol position 3", "'twin'", "not found"});
    ASSERT_NO_FATAL_FAILURE(
        expect_unchanged(b, log0, {"graft: symbol position 3 for symbol 'twin' in object 'main' not found"},
                         patch_path("bad_input_twin3")));

    // sympos 2: the second twin (bad_input_twin.c, linked second) and only that one.
    Cmd c2 = graft_cmd({"load", b.pid, patch_path("bad_input_twin2"), "--timeout", "60"});
    ASSERT_EQ(c2.rc, 0) << c2.out << c2.err;
    EXPECT_EQ(tick(b.t), "value 2 twin_a 10 twin_b 200");
    auto st = status(b.t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump();
    bool found = false;
    for (auto &f : st["patches"][0]["objects"][0]["funcs"])
        if (f["name"] == "twin") {
            found = true;
            EXPECT_EQ(f["sympos"], 2) << f.dump();
            EXPECT_EQ(f["patched"], true) << f.dump();
        }
    EXPECT_TRUE(found) << st.dump();
    Cmd dis = graft_cmd({"disable", b.pid, "bad_input_twin2", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    EXPECT_EQ(tick(b.t), kOriginal);
    EXPECT_EQ(graft_cmd({"unload", b.pid, "bad_input_twin2"}).rc, 0);
    expect_good_load_works(b);
    quit(b);
}

TEST(BadInput, WrongBuildId) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    auto log0 = log_lines(b.t.pid());
    // The same source, built with --target bad_input_other: refused in bad_input.
    Cmd c = graft_cmd({"load", b.pid, patch_path("bad_input_wrong_target")});
    expect_refusal(c, {"bad_input_wrong_target", "build-id"});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}, patch_path("bad_input_wrong_target")));

    // Built with --target bad_input: accepted (the check compares, it does not refuse all).
    Cmd ok = graft_cmd({"load", b.pid, patch_path("bad_input_pinned"), "--timeout", "60"});
    ASSERT_EQ(ok.rc, 0) << ok.out << ok.err;
    EXPECT_EQ(tick(b.t), "value 2 twin_a 10 twin_b 20");
    quit(b);
}

TEST(BadInput, NotAPatch) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    TempDir dir;

    // A plain shared library: refused, and none of its code (its constructor) ever runs.
    auto log0 = log_lines(b.t.pid());
    const std::string lib = prog_path("bad_input_plainlib.so");
    ASSERT_EQ(access(lib.c_str(), R_OK), 0) << lib;
    Cmd c1 = graft_cmd({"load", b.pid, lib});
    expect_refusal(c1, {});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}, lib));
    for (auto &l : b.t.lines())
        EXPECT_EQ(l.find("constructor ran"), std::string::npos) << "the agent ran the library's code";

    // A text file named like a patch.
    const std::string text = dir.path + "/notes.so";
    std::ofstream(text) << "This is not a patch.\nJust some text.\n";
    log0 = log_lines(b.t.pid());
    Cmd c2 = graft_cmd({"load", b.pid, text});
    expect_refusal(c2, {});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}, text));

    // An empty file.
    const std::string empty = dir.path + "/empty.so";
    std::ofstream(empty).flush();
    log0 = log_lines(b.t.pid());
    Cmd c3 = graft_cmd({"load", b.pid, empty});
    expect_refusal(c3, {});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}, empty));

    // A file that does not exist.
    Cmd c4 = graft_cmd({"load", b.pid, dir.path + "/missing.so"});
    expect_refusal(c4, {"No such file or directory"});
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}));

    expect_good_load_works(b);
    quit(b);
}

TEST(BadInput, TruncatedPatch) {
    TempDir dir;
    std::ifstream in(patch_path("bad_input_fix"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 4096u);
    // Cut just past the ELF header, past the first page, and in half; each in a fresh target.
    for (size_t len : {size_t{100}, size_t{4096}, bytes.size() / 2}) {
        SCOPED_TRACE("truncated to " + std::to_string(len) + " of " + std::to_string(bytes.size()) +
                     " bytes");
        BadInputTarget b;
        ASSERT_TRUE(b.ok) << b.t.all_output();
        const std::string cut = dir.path + "/bad_input_fix_" + std::to_string(len) + ".so";
        std::ofstream(cut, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(len));
        auto log0 = log_lines(b.t.pid());
        Cmd c = graft_cmd({"load", b.pid, cut});
        expect_refusal(c, {});
        expect_unchanged(b, log0, {}, cut);
        if (b.died) continue;  // try the next length
        expect_good_load_works(b);
        quit(b);
    }
}

// ---- the control socket ------------------------------------------------------------------------

namespace {

enum class Outcome { kAnswered, kClosed, kTimeout, kNoConnect };

struct Exchange {
    Outcome outcome = Outcome::kTimeout;
    std::string answer;  // the first line, if any
};

const char *name_of(Outcome o) {
    switch (o) {
        case Outcome::kAnswered:
            return "answered";
        case Outcome::kClosed:
            return "closed";
        case Outcome::kTimeout:
            return "timeout";
        case Outcome::kNoConnect:
            return "no connection";
    }
    return "?";
}

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

// Sends `bytes` (then half-closes if `shut`), and waits up to `timeout` s for the agent's first
// answer line or for it to close the connection.
Exchange exchange(pid_t pid, const std::string &bytes, bool shut, double timeout = 10) {
    Exchange ex;
    int fd = connect_agent(pid);
    if (fd < 0) {
        ex.outcome = Outcome::kNoConnect;
        return ex;
    }
    auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                               std::chrono::duration<double>(timeout));
    size_t sent = 0;
    bool sending = true;
    std::string got;
    if (bytes.empty() && shut) {
        shutdown(fd, SHUT_WR);
        sending = false;
    }
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
        if (poll(&p, 1, 50) <= 0) continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                got.append(buf, static_cast<size_t>(n));
                auto nl = got.find('\n');
                if (nl != std::string::npos) {
                    ex.outcome = Outcome::kAnswered;
                    ex.answer = got.substr(0, nl);
                    break;
                }
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                ex.outcome = got.empty() ? Outcome::kClosed : Outcome::kAnswered;
                ex.answer = got;
                break;
            }
        }
        if (sending && (p.revents & POLLOUT)) {
            ssize_t n =
                send(fd, bytes.data() + sent, std::min<size_t>(bytes.size() - sent, 65536), MSG_NOSIGNAL);
            if (n > 0)
                sent += static_cast<size_t>(n);
            else if (errno != EAGAIN && errno != EINTR)
                sending = false;  // the agent stopped reading
            if (sent == bytes.size()) {
                sending = false;
                if (shut) shutdown(fd, SHUT_WR);
            }
        }
    }
    close(fd);
    return ex;
}

// The agent refused the request (an error answer) or hung up; it did not act on it.
void expect_rejected(const Exchange &ex, const std::string &what) {
    EXPECT_TRUE(ex.outcome == Outcome::kAnswered || ex.outcome == Outcome::kClosed)
        << what << ": " << name_of(ex.outcome);
    if (ex.outcome != Outcome::kAnswered) return;
    try {
        auto j = nlohmann::json::parse(ex.answer);
        EXPECT_EQ(j.value("ok", true), false) << what << ": " << ex.answer;
        EXPECT_TRUE(j.contains("error")) << what << ": " << ex.answer;
    } catch (...) {
        ADD_FAILURE() << what << ": the answer is not JSON: " << ex.answer;
    }
}

std::string random_bytes(std::mt19937 &rng, size_t n, bool allow_newline) {
    std::string s(n, '\0');
    for (auto &c : s) {
        c = static_cast<char>(rng() & 0xff);
        if (!allow_newline && c == '\n') c = '\r';
    }
    return s;
}

}  // namespace

TEST(BadInput, ControlSocketGarbage) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    const pid_t pid = b.t.pid();
    auto log0 = log_lines(pid);
    std::mt19937 rng(20240611);
    std::vector<std::pair<std::string, std::pair<std::string, bool>>> cases = {
        {"connect and hang up", {"", true}},
        {"a lone newline", {"\n", true}},
        {"random bytes and a newline", {random_bytes(rng, 300, false) + "\n", true}},
        {"random bytes, no newline, hang up", {random_bytes(rng, 300, false), true}},
        {"a NUL and invalid UTF-8", {std::string("{\"op\":\"st") + '\0' + "tus\"}\xff\xfe\n", true}},
        {"invalid JSON", {"{\"op\": \"load\", \"path\": \n", true}},
        {"JSON that is not an object", {"[1, 2, 3]\n", true}},
        {"a JSON string", {"\"load\"\n", true}},
        {"null", {"null\n", true}},
        {"op of the wrong type", {"{\"op\": 42}\n", true}},
        {"unknown op", {"{\"op\": \"frobnicate\"}\n", true}},
        {"load without a path", {"{\"op\": \"load\"}\n", true}},
        {"load with a number for a path", {"{\"op\": \"load\", \"path\": 42}\n", true}},
        {"load of a missing file", {"{\"op\": \"load\", \"path\": \"/nonexistent/x.so\"}\n", true}},
        {"load of a relative path", {"{\"op\": \"load\", \"path\": \"bad_input_fix.so\"}\n", true}},
        {"disable of an unknown patch", {"{\"op\": \"disable\", \"name\": \"nope\"}\n", true}},
        {"unload of an unknown patch", {"{\"op\": \"unload\", \"name\": \"nope\"}\n", true}},
        {"force without a transition", {"{\"op\": \"force\", \"name\": \"nope\"}\n", true}},
        {"deeply nested JSON", {std::string(100000, '[') + std::string(100000, ']') + "\n", true}},
        {"a 4 MiB line", {std::string(4u << 20, 'a') + "\n", true}},
        {"a 2 MiB path", {"{\"op\": \"load\", \"path\": \"/" + std::string(2u << 20, 'a') + "\"}\n", true}},
        {"two requests on one line", {"{\"op\": \"status\"}{\"op\": \"status\"}\n", true}},
    };
    for (auto &[what, c] : cases) {
        SCOPED_TRACE(what);
        Exchange ex = exchange(pid, c.first, c.second);
        expect_rejected(ex, what);
        std::cout << what << ": " << name_of(ex.outcome) << " " << ex.answer.substr(0, 160) << std::endl;
        // The agent still answers the real command after each one.
        Cmd st = graft_cmd({"status", b.pid, "--json"}, 20);
        ASSERT_EQ(st.rc, 0) << what << ": " << st.err;
    }
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}));
    expect_good_load_works(b);
    quit(b);
}

// A client that connects and then says nothing, or stops in the middle of a line, while keeping
// its connection open, must not stop the agent from serving everyone else.
TEST(BadInput, ControlSocketSilentClient) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    const pid_t pid = b.t.pid();
    auto log0 = log_lines(pid);
    std::mt19937 rng(7);
    std::vector<std::pair<std::string, std::string>> cases = {
        {"connect and say nothing", ""},
        {"half a request", "{\"op\": \"sta"},
        {"random bytes, no newline", random_bytes(rng, 300, false)},
    };
    for (auto &[what, bytes] : cases) {
        SCOPED_TRACE(what);
        // The silent client keeps its connection; meanwhile a real command must be answered.
        int fd = connect_agent(pid);
        ASSERT_GE(fd, 0);
        if (!bytes.empty()) {
            ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), (ssize_t)bytes.size());
        }
        auto t0 = std::chrono::steady_clock::now();
        Cmd st = graft_cmd({"status", b.pid, "--json"}, 15);
        double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        EXPECT_EQ(st.rc, 0) << what << ": `graft status` got no answer while a client stayed silent (" << took
                            << " s): " << st.err;
        // The silent client itself is answered with an error or hung up on, in bounded time.
        pollfd p{fd, POLLIN, 0};
        int r = poll(&p, 1, 10000);
        EXPECT_EQ(r, 1) << what << ": the agent never gave up on a silent client";
        if (r == 1) {
            char buf[4096];
            ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n > 0) {
                std::string a(buf, static_cast<size_t>(n));
                EXPECT_NE(a.find("\"ok\":false"), std::string::npos) << a;
            }
        }
        close(fd);
        if (st.rc != 0) {
            // Let the agent recover before the next case (it may be stuck on this client).
            graft_cmd({"status", b.pid}, 15);
        }
    }
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}));
    expect_good_load_works(b);
    quit(b);
}

TEST(BadInput, SecondLoadWhileTransitionRuns) {
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    // The holder thread sleeps inside hold(): the transition of a patch of hold() stays pending.
    size_t from = b.t.line_count();
    b.t.send("hold\n");
    ASSERT_GE(b.t.wait_line("holding", 30, from), 0) << b.t.all_output();
    Cmd first = graft_cmd({"load", b.pid, patch_path("bad_input_hold"), "--no-wait"});
    ASSERT_EQ(first.rc, 0) << first.out << first.err;
    ASSERT_TRUE(wait_status(b.t.pid(), [](const nlohmann::json &s) {
        if (s["transition"].is_null()) return false;
        for (auto &p : s["transition"]["pending"])
            if (p.value("reason", "").find("hold") != std::string::npos) return true;
        return false;
    })) << status(b.t.pid()).dump(2);
    auto log0 = log_lines(b.t.pid());

    Cmd second = graft_cmd({"load", b.pid, patch_path("bad_input_fix")});
    expect_refusal(second, {"Device or resource busy"});
    // Nothing of the second patch: the first one is still the only one, still in transition.
    auto st = status(b.t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["name"], "bad_input_hold");
    EXPECT_EQ(st["patches"][0]["transition"], true);
    EXPECT_TRUE(st["unloadable"].empty()) << st.dump(2);
    ASSERT_FALSE(st["transition"].is_null());
    EXPECT_EQ(st["transition"]["patch"], "bad_input_hold");
    EXPECT_EQ(tick(b.t), kOriginal);
    auto log1 = log_lines(b.t.pid());
    ASSERT_GE(log1.size(), log0.size());
    for (size_t i = log0.size(); i < log1.size(); i++)
        EXPECT_EQ(log1[i].find("bad_input_fix"), std::string::npos) << log1[i];
    EXPECT_EQ(maps_of(b.t.pid()).find(patch_path("bad_input_fix")), std::string::npos);

    // Reverse the first transition, let the holder go, and the second patch loads.
    Cmd dis = graft_cmd({"disable", b.pid, "bad_input_hold", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    ASSERT_EQ(graft_cmd({"unload", b.pid, "bad_input_hold"}).rc, 0);
    from = b.t.line_count();
    b.t.send("release\n");
    ASSERT_GE(b.t.wait_line("released", 30, from), 0) << b.t.all_output();
    st = status(b.t.pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump(2);
    expect_good_load_works(b);
    quit(b);
}

TEST(BadInput, OtherUserIsRefused) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to run graft as another user";
    BadInputTarget b;
    ASSERT_TRUE(b.ok) << b.t.all_output();
    auto as_nobody = [&](std::vector<std::string> args) {
        std::vector<std::string> argv{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                      graft_bin()};
        argv.insert(argv.end(), args.begin(), args.end());
        return run(argv, 60);
    };
    // The commands run at all as nobody (the binary is reachable): `graft flags` works.
    Cmd flags = as_nobody({"flags", "target"});
    ASSERT_EQ(flags.rc, 0) << "graft cannot run as nobody here: " << flags.err;

    auto log0 = log_lines(b.t.pid());
    for (auto args : std::vector<std::vector<std::string>>{{"status", b.pid},
                                                           {"list", b.pid, "--json"},
                                                           {"threads", b.pid},
                                                           {"log", b.pid},
                                                           {"load", b.pid, patch_path("bad_input_fix")},
                                                           {"disable", b.pid, "bad_input_fix"}}) {
        SCOPED_TRACE(args[0]);
        Cmd c = as_nobody(args);
        expect_refusal(c, {"Permission denied"});
        EXPECT_EQ(c.out.find("bad_input"), std::string::npos) << c.out;
    }
    ASSERT_NO_FATAL_FAILURE(expect_unchanged(b, log0, {}, patch_path("bad_input_fix")));

    // With a patch loaded by root, nobody can neither disable nor unload it.
    Cmd load = graft_cmd({"load", b.pid, patch_path("bad_input_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.err;
    for (auto args : std::vector<std::vector<std::string>>{{"disable", b.pid, "bad_input_fix"},
                                                           {"force", b.pid, "bad_input_fix"},
                                                           {"unload", b.pid, "bad_input_fix"}}) {
        SCOPED_TRACE(args[0]);
        expect_refusal(as_nobody(args), {"Permission denied"});
    }
    EXPECT_EQ(tick(b.t), "value 2 twin_a 10 twin_b 20");
    auto st = status(b.t.pid());
    ASSERT_EQ(st["patches"].size(), 1u) << st.dump(2);
    EXPECT_EQ(st["patches"][0]["enabled"], true);
    EXPECT_TRUE(st["transition"].is_null());
    quit(b);
}
