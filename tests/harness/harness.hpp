// Scenario-test harness: starts real programs under `graft run`, drives them with the real
// `graft` command and reads what they print. No sleeps stand in for synchronisation: every wait
// is for a line, an exit or a state reported by `graft`, with a deadline.
#pragma once
#include <signal.h>
#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace graft::test {

struct Cmd {
    int rc = -1;
    std::string out, err;
};

// Runs build/bin/graft with `args` (and extra environment), waits for it (deadline: timeout s).
Cmd graft_cmd(const std::vector<std::string> &args, double timeout = 120,
              const std::vector<std::string> &env = {});
// Runs any command.
Cmd run(const std::vector<std::string> &argv, double timeout = 120, const std::vector<std::string> &env = {});

std::string prog_path(const std::string &name);   // a test program built with $(graft flags target)
std::string patch_path(const std::string &name);  // a test patch built with `graft build`
std::string graft_bin();

// `graft status PID --json` parsed; fails the test if the command fails.
nlohmann::json status(pid_t pid);
nlohmann::json threads(pid_t pid);
std::vector<std::string> log_lines(pid_t pid);
// The entry of `patch` for `object` in a `graft status --json` answer (null if absent).
nlohmann::json object_of(const nlohmann::json &st, const std::string &patch, const std::string &object);
// Waits until `pred(status)` holds (polling `graft status`), or fails after `timeout` s.
bool wait_status(pid_t pid, const std::function<bool(const nlohmann::json &)> &pred, double timeout = 60);
// Waits until no transition is in progress.
bool wait_idle(pid_t pid, double timeout = 60);
// The pending entry of thread `tid` in a `graft status --json` answer, or null.
const nlohmann::json *pending_entry(const nlohmann::json &st, long tid);

// A program running under `graft run`, with its stdout collected line by line.
class Target {
  public:
    explicit Target(const std::string &prog, const std::vector<std::string> &args = {},
                    const std::vector<std::string> &env = {}, bool under_graft = true);
    ~Target();
    Target(const Target &) = delete;
    Target &operator=(const Target &) = delete;

    pid_t pid() const { return pid_; }
    // Waits for a line containing `needle` (after line index `from`); returns its index or -1.
    int wait_line(const std::string &needle, double timeout = 30, size_t from = 0);
    // Waits until `pred` holds for the collected lines.
    bool wait_lines(const std::function<bool(const std::vector<std::string> &)> &pred, double timeout = 30);
    std::vector<std::string> lines();
    size_t line_count();
    void send(const std::string &text);    // to the program's stdin
    int wait_exit(double timeout = 30);    // exit status, or 128+signal, or -1 on timeout
    bool wait_agent(double timeout = 30);  // until `graft list PID` answers
    std::string all_output();

  private:
    void reader();
    pid_t pid_ = -1;
    int in_ = -1, out_ = -1;
    std::thread reader_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    std::string partial_;
    bool eof_ = false;
    int status_ = -1;
    bool reaped_ = false;
};

// While it lives, SIGPIPE is blocked in this thread (and the children it starts): writing to a
// target that died fails with EPIPE instead of killing the test.
struct SigpipeBlocked {
    sigset_t old;
    SigpipeBlocked();
    ~SigpipeBlocked();
};

// For failure messages: whether the target is still running, or how it ended.
std::string target_state(Target &t);
// Waits for a line of `t` containing `needle` and returns the number after its " tid ", or -1.
long tid_of(Target &t, const std::string &needle);
// Sends `cmd` and returns the first later line containing `prefix` (or "<no answer to cmd>").
std::string ask(Target &t, const std::string &cmd, const std::string &prefix, double timeout = 30);
// ask(), for an answer made of `key=value` words (counters): the values by key.
std::map<std::string, long> ask_counts(Target &t, const std::string &cmd, const std::string &prefix);
// GRAFT_STRESS_LONG=1: stress tests run their long version.
bool stress_long();
// GRAFT_STRESS_SCALE (default 1): a factor on the default rounds and budgets of the stress tests
// and of the scenarios that loop over transitions (fork, signal handler, consistency, no
// disturbance, killed attach), for the slow sanitizer builds of the CI matrix (never above 1
// without GRAFT_STRESS_LONG).
double stress_scale();
// `n` scaled, at least `floor`.
int scaled(int n, int floor);

// The lines of `s` (a command's output), without their newlines.
std::vector<std::string> split_lines(const std::string &s);
// A refusal: exit status != 0 and exactly one line "graft: <what>: <why>" naming every needle.
void expect_refusal(const Cmd &c, const std::vector<std::string> &needles);

}  // namespace graft::test
