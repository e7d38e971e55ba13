#include "cli/client.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "common/protocol.hpp"

namespace graft::cli {

void die(const std::string &what, const std::string &why, int code) {
    std::cerr << "graft: " << what << ": " << why << std::endl;
    std::exit(code);
}

std::string errno_text(int err) {
    return std::strerror(err);
}

pid_t parse_pid(const std::string &s) {
    char *end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end || v <= 0 || v > INT_MAX) die(s, "not a process id: " + errno_text(EINVAL));
    return static_cast<pid_t>(v);
}

nlohmann::json request_raw(pid_t pid, const nlohmann::json &req, const std::string &what, bool *connected) {
    *connected = false;
    std::string proc = "/proc/" + std::to_string(pid);
    struct stat st {};
    if (stat(proc.c_str(), &st) != 0) die(std::to_string(pid), errno_text(ESRCH));
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die(what, errno_text(errno));
    sockaddr_un a;
    socklen_t len = protocol::address(pid, &a);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), len) != 0) {
        int e = errno;
        close(fd);
        die(std::to_string(pid),
            "no graft agent answers in this process (start it with `graft run`): " + errno_text(e));
    }
    *connected = true;
    std::string line;
    // Read the answer even if sending failed: a refusing agent answers before it reads.
    bool sent = protocol::write_all(fd, req.dump() + "\n");
    if (!protocol::read_line(fd, &line) && !sent) {
        close(fd);
        die(what, "the agent closed the connection: " + errno_text(ECONNRESET));
    }
    if (line.empty()) {
        close(fd);
        die(what, "the agent closed the connection: " + errno_text(ECONNRESET));
    }
    close(fd);
    try {
        return nlohmann::json::parse(line);
    } catch (const std::exception &e) {
        die(what, std::string("the agent's answer is not JSON: ") + errno_text(EPROTO));
    }
}

nlohmann::json request(pid_t pid, const nlohmann::json &req, const std::string &what) {
    bool connected;
    auto j = request_raw(pid, req, what, &connected);
    if (!j.value("ok", false)) {
        int err = j.value("errno", EIO);
        die(what, j.value("error", std::string("failed")) + ": " + errno_text(err));
    }
    return j;
}

namespace {
std::string exe_dir() {
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    buf[n] = 0;
    std::string p(buf);
    return p.substr(0, p.rfind('/'));
}
bool exists(const std::string &p) {
    return access(p.c_str(), R_OK) == 0;
}
}  // namespace

std::string agent_path() {
    if (const char *e = std::getenv("GRAFT_AGENT"); e && *e) return e;
    std::string d = exe_dir();
    for (const std::string &c : {d + "/../lib/libgraft.so", d + "/libgraft.so"})
        if (exists(c)) {
            char r[PATH_MAX];
            return realpath(c.c_str(), r) ? std::string(r) : c;
        }
    die("run", "cannot find libgraft.so next to the graft command (set GRAFT_AGENT): " + errno_text(ENOENT));
}

std::string audit_path(const std::string &agent) {
    if (const char *e = std::getenv("GRAFT_AUDIT"); e) return e;  // empty: run without it
    std::string c = agent.substr(0, agent.rfind('/') + 1) + "libgraft-audit.so";
    return exists(c) ? c : std::string();
}

std::string include_dir() {
    std::string d = exe_dir();
    for (const std::string &c : {d + "/../include", std::string(GRAFT_SOURCE_INCLUDE)})
        if (exists(c + "/graft/graft.h")) {
            char r[PATH_MAX];
            return realpath(c.c_str(), r) ? std::string(r) : c;
        }
    return d + "/../include";
}

}  // namespace graft::cli
