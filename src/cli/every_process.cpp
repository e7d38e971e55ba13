#include "cli/every_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "cli/client.hpp"
#include "cli/namespaces.hpp"

namespace graft::cli {
namespace {

std::string comm_of(pid_t pid) {
    std::string comm;
    std::ifstream("/proc/" + std::to_string(pid) + "/comm") >> comm;
    return comm;
}

// Whether the caller may control `pid`: root may try any process (the kernel has the last word
// when it opens the process's memory or traces it); others only their own.
bool may_control(pid_t pid) {
    struct stat st {};
    std::string proc = "/proc/" + std::to_string(pid);
    return stat(proc.c_str(), &st) == 0 && (getuid() == 0 || st.st_uid == getuid());
}

// One running job: its child, the pipe its output comes through, what came so far.
struct Running {
    size_t index;
    pid_t child;
    int fd;
    std::string output;
};

pid_t start_job(pid_t pid, int *out_fd, const std::function<void(pid_t)> &job) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) die("--all", "cannot make a pipe: " + errno_text(errno));
    std::cout.flush();
    std::cerr.flush();
    pid_t child = fork();
    if (child < 0) die("--all", "cannot start a process: " + errno_text(errno));
    if (child == 0) {
        close(p[0]);
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[1]);
        job(pid);
        std::cout.flush();
        std::cerr.flush();
        _exit(0);
    }
    close(p[1]);
    *out_fd = p[0];
    return child;
}

// The last non-empty line of a job's output, without its "graft: WHAT: " prefix.
std::string reason_of(const std::string &output) {
    std::string last;
    size_t pos = 0;
    while (pos < output.size()) {
        size_t eol = output.find('\n', pos);
        if (eol == std::string::npos) eol = output.size();
        if (eol > pos) last = output.substr(pos, eol - pos);
        pos = eol + 1;
    }
    if (last.rfind("graft: ", 0) == 0) {
        size_t colon = last.find(": ", 7);
        last = colon == std::string::npos ? last.substr(7) : last.substr(colon + 2);
    }
    return last.empty() ? std::string("it ended without saying why") : last;
}

void finish_job(Running &r, ProcessResult *out) {
    close(r.fd);
    int status = 0;
    while (waitpid(r.child, &status, 0) < 0 && errno == EINTR) {
    }
    out->attached = r.output.find("attaching the agent") != std::string::npos;
    out->output = r.output;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        out->outcome = Outcome::kDone;
        return;
    }
    out->outcome =
        WIFEXITED(status) && WEXITSTATUS(status) == kSkipExit ? Outcome::kSkipped : Outcome::kFailed;
    out->reason = WIFSIGNALED(status)
                      ? std::string("graft was killed by signal ") + std::to_string(WTERMSIG(status))
                      : reason_of(r.output);
}

}  // namespace

std::vector<ProcessRef> controllable_processes() {
    std::vector<ProcessRef> out;
    DIR *d = opendir("/proc");
    if (!d) die("--all", "cannot list /proc: " + errno_text(errno));
    while (dirent *e = readdir(d)) {
        char *end = nullptr;
        long v = std::strtol(e->d_name, &end, 10);
        if (*end || v <= 0 || v == getpid() || v == getppid()) continue;
        pid_t pid = static_cast<pid_t>(v);
        if (may_control(pid)) out.push_back({pid, comm_of(pid)});
    }
    closedir(d);
    std::sort(out.begin(), out.end(), [](const ProcessRef &a, const ProcessRef &b) { return a.pid < b.pid; });
    return out;
}

std::vector<ProcessRef> agent_processes() {
    // Agents listen on "@graft/<pid>" in the abstract namespace of their network namespace, named
    // by their pid in their own pid namespace (a container's). Each network namespace's socket
    // table is read once, through a process in it (/proc/PID/net/unix), and each process is
    // matched by its own pid there; a match that is not the socket's holder (two pid namespaces
    // sharing one network namespace) is weeded out by the job that talks to it, which checks the
    // holder (client.cpp).
    std::map<std::string, std::set<pid_t>> sockets;  // network namespace -> the pids named
    std::vector<ProcessRef> out;
    for (const auto &p : controllable_processes()) {
        const std::string proc = "/proc/" + std::to_string(p.pid);
        char ns[64];
        const ssize_t n = readlink((proc + "/ns/net").c_str(), ns, sizeof ns - 1);
        if (n <= 0) continue;
        auto [it, fresh] = sockets.try_emplace(std::string(ns, static_cast<size_t>(n)));
        if (fresh) {
            std::ifstream f(proc + "/net/unix");
            for (std::string line; std::getline(f, line);) {
                const auto k = line.find("@graft/");
                if (k == std::string::npos) continue;
                const long v = std::atol(line.c_str() + k + 7);
                if (v > 0) it->second.insert(static_cast<pid_t>(v));
            }
        }
        if (it->second.count(pid_in_own_namespace(p.pid))) out.push_back(p);
    }
    return out;
}

bool resolve_all_operands(const std::string &op, bool all, std::string *pid_s, std::string *name) {
    if (all && name->empty()) std::swap(*pid_s, *name);
    if (all && !pid_s->empty())
        die(op, "with --all, name only the patch, not a process: " + errno_text(EINVAL), 2);
    if (name->empty() || (!all && pid_s->empty()))
        die(op, "name a process and a patch (or --all and a patch): " + errno_text(EINVAL), 2);
    return true;
}

std::vector<ProcessRef> processes_with_patch(const std::string &name, const std::string &op) {
    // Asked in children, as the jobs are: an agent that does not answer must not stop the list.
    std::vector<ProcessRef> agents = agent_processes(), out;
    auto results = run_per_process(agents, 8, [&](pid_t pid) {
        auto st = request(pid, {{"op", "status"}}, op);
        // Enabled or in transition ("patches"), or disabled and waiting for unload ("unloadable").
        for (const char *list : {"patches", "unloadable"})
            for (auto &p : st[list])
                if (p.value("name", "") == name) std::exit(0);
        std::exit(kSkipExit);
    });
    for (auto &r : results)
        if (r.outcome == Outcome::kDone) out.push_back(r.process);
    return out;
}

std::vector<ProcessResult> run_per_process(const std::vector<ProcessRef> &procs, int jobs,
                                           const std::function<void(pid_t)> &job) {
    std::vector<ProcessResult> results(procs.size());
    std::vector<Running> running;
    size_t next = 0;
    jobs = std::max(1, jobs);
    while (next < procs.size() || !running.empty()) {
        while (next < procs.size() && running.size() < static_cast<size_t>(jobs)) {
            results[next].process = procs[next];
            int fd = -1;
            pid_t child = start_job(procs[next].pid, &fd, job);
            running.push_back({next++, child, fd, {}});
        }
        std::vector<pollfd> fds;
        for (auto &r : running) fds.push_back({r.fd, POLLIN, 0});
        if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
            die("--all", "poll: " + errno_text(errno));
        for (size_t i = fds.size(); i-- > 0;) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            char buf[4096];
            ssize_t n = read(running[i].fd, buf, sizeof buf);
            if (n > 0) {
                running[i].output.append(buf, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            finish_job(running[i], &results[running[i].index]);
            running.erase(running.begin() + static_cast<long>(i));
        }
    }
    return results;
}

int report_per_process(const std::string &op, const std::string &done, std::vector<ProcessResult> results,
                       const std::vector<ProcessResult> &skipped_before, bool json) {
    results.insert(results.end(), skipped_before.begin(), skipped_before.end());
    std::sort(results.begin(), results.end(),
              [](const ProcessResult &a, const ProcessResult &b) { return a.process.pid < b.process.pid; });
    int n_done = 0, n_skipped = 0, n_failed = 0;
    nlohmann::json list = nlohmann::json::array();
    for (auto &r : results) {
        const char *word = r.outcome == Outcome::kDone      ? done.c_str()
                           : r.outcome == Outcome::kSkipped ? "skipped"
                                                            : "failed";
        (r.outcome == Outcome::kDone ? n_done : r.outcome == Outcome::kSkipped ? n_skipped : n_failed)++;
        if (json) {
            list.push_back({{"pid", r.process.pid},
                            {"comm", r.process.comm},
                            {"result", word},
                            {"reason", r.reason},
                            {"attached", r.attached}});
            continue;
        }
        std::cout << "graft: " << r.process.pid << " (" << r.process.comm << "): " << word;
        if (r.outcome == Outcome::kDone && r.attached) std::cout << " (agent attached)";
        if (!r.reason.empty()) std::cout << ": " << r.reason;
        std::cout << std::endl;
    }
    if (json)
        std::cout << nlohmann::json{{"op", op},
                                    {"processes", list},
                                    {done, n_done},
                                    {"skipped", n_skipped},
                                    {"failed", n_failed}}
                         .dump(2)
                  << std::endl;
    else
        std::cout << "graft: " << op << ": " << n_done << " " << done << ", " << n_skipped << " skipped, "
                  << n_failed << " failed" << std::endl;
    return n_failed ? 1 : 0;
}

}  // namespace graft::cli
