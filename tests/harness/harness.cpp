#include "harness.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <gtest/gtest.h>

namespace graft::test {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

void exec_child(const std::vector<std::string> &argv, const std::vector<std::string> &env) {
    for (const auto &e : env) putenv(strdup(e.c_str()));
    std::vector<char *> a;
    for (const auto &s : argv) a.push_back(const_cast<char *>(s.c_str()));
    a.push_back(nullptr);
    execvp(a[0], a.data());
    _exit(127);
}
}  // namespace

std::string graft_bin() {
    // GRAFT_TEST_GRAFT: another `graft` (tests/packaging/run.sh runs the examples with the
    // installed one, which finds the installed agent).
    if (const char *e = std::getenv("GRAFT_TEST_GRAFT"); e && *e) return e;
    return GRAFT_TEST_BIN;
}
std::string prog_path(const std::string &name) {
    return std::string(GRAFT_TEST_PROGS) + "/" + name;
}
std::string patch_path(const std::string &name) {
    return std::string(GRAFT_TEST_PATCHES) + "/" + name + ".so";
}

Cmd run(const std::vector<std::string> &argv, double timeout, const std::vector<std::string> &env) {
    int op[2], ep[2];
    if (pipe2(op, O_CLOEXEC) != 0 || pipe2(ep, O_CLOEXEC) != 0) return {};
    pid_t pid = fork();
    if (pid == 0) {
        dup2(op[1], 1);
        dup2(ep[1], 2);
        int devnull = open("/dev/null", O_RDONLY);
        dup2(devnull, 0);
        exec_child(argv, env);
    }
    close(op[1]);
    close(ep[1]);
    Cmd c;
    auto start = Clock::now();
    pollfd fds[2] = {{op[0], POLLIN, 0}, {ep[0], POLLIN, 0}};
    int open_fds = 2;
    while (open_fds > 0 && since(start) < timeout) {
        if (poll(fds, 2, 100) <= 0) continue;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
            } else {
                (i == 0 ? c.out : c.err).append(buf, static_cast<size_t>(n));
            }
        }
    }
    if (open_fds > 0) {
        kill(pid, SIGKILL);
        for (auto &f : fds)
            if (f.fd >= 0) close(f.fd);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    c.rc = open_fds > 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return c;
}

Cmd graft_cmd(const std::vector<std::string> &args, double timeout, const std::vector<std::string> &env) {
    std::vector<std::string> argv{graft_bin()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv, timeout, env);
}

nlohmann::json status(pid_t pid) {
    Cmd c = graft_cmd({"status", std::to_string(pid), "--json"});
    EXPECT_EQ(c.rc, 0) << c.err;
    try {
        return nlohmann::json::parse(c.out);
    } catch (...) {
        ADD_FAILURE() << "graft status printed no JSON: " << c.out << c.err;
        return nlohmann::json::object();
    }
}

nlohmann::json threads(pid_t pid) {
    Cmd c = graft_cmd({"threads", std::to_string(pid), "--json"});
    EXPECT_EQ(c.rc, 0) << c.err;
    try {
        return nlohmann::json::parse(c.out);
    } catch (...) {
        ADD_FAILURE() << "graft threads printed no JSON: " << c.out << c.err;
        return nlohmann::json::array();
    }
}

std::vector<std::string> log_lines(pid_t pid) {
    Cmd c = graft_cmd({"log", std::to_string(pid)});
    EXPECT_EQ(c.rc, 0) << c.err;
    return split_lines(c.out);
}

std::vector<std::string> split_lines(const std::string &s) {
    std::vector<std::string> v;
    std::istringstream is(s);
    for (std::string l; std::getline(is, l);) v.push_back(l);
    return v;
}

void expect_refusal(const Cmd &c, const std::vector<std::string> &needles) {
    EXPECT_NE(c.rc, 0) << "stdout: " << c.out << "\nstderr: " << c.err;
    auto lines = split_lines(c.err);
    ASSERT_EQ(lines.size(), 1u) << "stderr: " << c.err;
    const std::string &l = lines[0];
    EXPECT_EQ(l.rfind("graft: ", 0), 0u) << l;
    EXPECT_NE(l.find(": ", 7), std::string::npos) << "no '<what>: <why>' in: " << l;
    for (auto &n : needles) EXPECT_NE(l.find(n), std::string::npos) << "'" << n << "' missing in: " << l;
}

nlohmann::json object_of(const nlohmann::json &st, const std::string &patch, const std::string &object) {
    for (auto &p : st["patches"])
        if (p["name"] == patch)
            for (auto &o : p["objects"])
                if (o["name"] == object) return o;
    return nullptr;
}

bool wait_status(pid_t pid, const std::function<bool(const nlohmann::json &)> &pred, double timeout) {
    auto start = Clock::now();
    while (since(start) < timeout) {
        Cmd c = graft_cmd({"status", std::to_string(pid), "--json"});
        if (c.rc == 0) {
            try {
                if (pred(nlohmann::json::parse(c.out))) return true;
            } catch (...) {
            }
        }
        usleep(20000);  // polling interval of a wait with a deadline, not a synchronisation
    }
    return false;
}

bool wait_idle(pid_t pid, double timeout) {
    return wait_status(
        pid, [](const nlohmann::json &s) { return s["transition"].is_null(); }, timeout);
}

Target::Target(const std::string &prog, const std::vector<std::string> &args,
               const std::vector<std::string> &env, bool under_graft) {
    int ip[2], op[2];
    if (pipe2(ip, O_CLOEXEC) != 0 || pipe2(op, O_CLOEXEC) != 0) return;
    std::vector<std::string> argv;
    if (under_graft) argv = {graft_bin(), "run", "--"};
    argv.push_back(prog);
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = fork();
    if (pid_ == 0) {
        dup2(ip[0], 0);
        dup2(op[1], 1);
        exec_child(argv, env);
    }
    close(ip[0]);
    close(op[1]);
    in_ = ip[1];
    out_ = op[0];
    reader_ = std::thread([this] { reader(); });
}

Target::~Target() {
    if (pid_ > 0 && !reaped_) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (in_ >= 0) close(in_);
    if (reader_.joinable()) reader_.join();
    if (out_ >= 0) close(out_);
}

void Target::reader() {
    char buf[4096];
    for (;;) {
        ssize_t n = read(out_, buf, sizeof buf);
        std::lock_guard<std::mutex> g(mu_);
        if (n <= 0) {
            if (!partial_.empty()) lines_.push_back(partial_);
            eof_ = true;
            cv_.notify_all();
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                lines_.push_back(partial_);
                partial_.clear();
            } else {
                partial_ += buf[i];
            }
        }
        cv_.notify_all();
    }
}

int Target::wait_line(const std::string &needle, double timeout, size_t from) {
    std::unique_lock<std::mutex> l(mu_);
    auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
    size_t i = from;
    for (;;) {
        for (; i < lines_.size(); i++)
            if (lines_[i].find(needle) != std::string::npos) return static_cast<int>(i);
        if (eof_) return -1;
        if (cv_.wait_until(l, deadline) == std::cv_status::timeout) {
            for (; i < lines_.size(); i++)
                if (lines_[i].find(needle) != std::string::npos) return static_cast<int>(i);
            return -1;
        }
    }
}

bool Target::wait_lines(const std::function<bool(const std::vector<std::string> &)> &pred, double timeout) {
    std::unique_lock<std::mutex> l(mu_);
    auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout));
    for (;;) {
        if (pred(lines_)) return true;
        if (eof_) return pred(lines_);
        if (cv_.wait_until(l, deadline) == std::cv_status::timeout) return pred(lines_);
    }
}

std::vector<std::string> Target::lines() {
    std::lock_guard<std::mutex> g(mu_);
    return lines_;
}

size_t Target::line_count() {
    std::lock_guard<std::mutex> g(mu_);
    return lines_.size();
}

std::string Target::all_output() {
    std::string s;
    for (auto &l : lines()) s += l + "\n";
    return s;
}

void Target::send(const std::string &text) {
    ssize_t n = write(in_, text.data(), text.size());
    (void)n;
}

int Target::wait_exit(double timeout) {
    auto start = Clock::now();
    while (since(start) < timeout) {
        int st = 0;
        pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            reaped_ = true;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            return status_;
        }
        usleep(5000);
    }
    return -1;
}

bool Target::wait_agent(double timeout) {
    auto start = Clock::now();
    while (since(start) < timeout) {
        if (graft_cmd({"list", std::to_string(pid_)}).rc == 0) return true;
        usleep(10000);
    }
    return false;
}

SigpipeBlocked::SigpipeBlocked() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &s, &old);
}

SigpipeBlocked::~SigpipeBlocked() {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&s, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

const nlohmann::json *pending_entry(const nlohmann::json &st, long tid) {
    if (st["transition"].is_null()) return nullptr;
    for (auto &p : st["transition"]["pending"])
        if (p["tid"] == tid) return &p;
    return nullptr;
}

long tid_of(Target &t, const std::string &needle) {
    int i = t.wait_line(needle);
    if (i < 0) return -1;
    const std::string l = t.lines()[static_cast<size_t>(i)];
    const auto at = l.find(" tid ");
    return at == std::string::npos ? -1 : std::stol(l.substr(at + 5));
}

std::string target_state(Target &t) {
    int st = t.wait_exit(1);
    if (st < 0) return "\n(the target is still running)";
    if (st > 128) return "\n(the target died of signal " + std::to_string(st - 128) + ")";
    return "\n(the target exited with status " + std::to_string(st) + ")";
}

std::string ask(Target &t, const std::string &cmd, const std::string &prefix, double timeout) {
    size_t from = t.line_count();
    t.send(cmd + "\n");
    int i = t.wait_line(prefix, timeout, from);
    return i < 0 ? "<no answer to " + cmd + ">" : t.lines()[static_cast<size_t>(i)];
}

std::map<std::string, long> ask_counts(Target &t, const std::string &cmd, const std::string &prefix) {
    std::map<std::string, long> m;
    std::istringstream is(ask(t, cmd, prefix));
    std::string w;
    while (is >> w) {
        auto eq = w.find('=');
        if (eq != std::string::npos) m[w.substr(0, eq)] = std::stol(w.substr(eq + 1));
    }
    return m;
}

bool stress_long() {
    const char *e = std::getenv("GRAFT_STRESS_LONG");
    return e && std::string(e) == "1";
}

double stress_scale() {
    const char *e = std::getenv("GRAFT_STRESS_SCALE");
    const double f = e && *e ? std::atof(e) : 1.0;
    return f > 0 && f <= 1 ? f : 1.0;
}

int scaled(int n, int floor) {
    return std::max(floor, static_cast<int>(n * stress_scale()));
}

}  // namespace graft::test
