#include "cli/client.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/namespaces.hpp"
#include "cli/target_root.hpp"
#include "cli/thread_files.hpp"
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

namespace {

// Longest answer read (a status of many threads is large; past this the peer is not an agent).
constexpr size_t kMaxAnswerBytes = 64u << 20;

// Descriptors in one message after the first (the agent's kFdsPerTrustedMessage is the kernel's
// SCM_MAX_FD, 253).
constexpr size_t kFdsPerMessage = 250;

// Sends `len` (> 0) bytes of `data` with `fds` attached (SCM_RIGHTS); the bytes sent, or -1.
ssize_t send_some_with_fds(int fd, const char *data, size_t len, const int *fds, size_t n_fds) {
    iovec iov{const_cast<char *>(data), len};
    alignas(cmsghdr) char ctl[CMSG_SPACE(kFdsPerMessage * sizeof(int))] = {};
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctl;
    m.msg_controllen = CMSG_SPACE(n_fds * sizeof(int));
    cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_RIGHTS;
    h->cmsg_len = CMSG_LEN(n_fds * sizeof(int));
    std::memcpy(CMSG_DATA(h), fds, n_fds * sizeof(int));
    ssize_t n;
    do n = sendmsg(fd, &m, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

// Sends `line` with `proof` (if >= 0) attached to its first byte alone, then `extra` in messages
// of at most kFdsPerMessage descriptors, each attached to some bytes of the line: the agent
// reads the proof before it accepts more than a few descriptors, and the kernel never merges
// two messages that carry descriptors into one read.
bool send_with_fds(int fd, const std::string &line, int proof, const std::vector<int> &extra) {
    if (proof < 0) return protocol::write_all(fd, line);
    size_t at = 0;
    ssize_t n = send_some_with_fds(fd, line.data(), 1, &proof, 1);
    if (n <= 0) return false;
    at = static_cast<size_t>(n);
    for (size_t i = 0; i < extra.size() && at < line.size(); i += kFdsPerMessage) {
        const size_t k = std::min(kFdsPerMessage, extra.size() - i);
        // At most a few bytes a message, so that the line lasts for every batch.
        const size_t len = std::min<size_t>(8, line.size() - at);
        n = send_some_with_fds(fd, line.data() + at, len, extra.data() + i, k);
        if (n <= 0) return false;
        at += static_cast<size_t>(n);
        if (at == line.size() && i + k < extra.size()) return false;  // a line too short for them all
    }
    return protocol::write_all(fd, line.substr(at));
}

// Reads the answer line (without its newline). False on EOF or error before a newline; sets
// *too_long past kMaxAnswerBytes.
bool read_answer(int fd, std::string *out, bool *too_long) {
    out->clear();
    *too_long = false;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        auto *nl = static_cast<char *>(std::memchr(buf, '\n', static_cast<size_t>(n)));
        out->append(buf, nl ? static_cast<size_t>(nl - buf) : static_cast<size_t>(n));
        if (out->size() > kMaxAnswerBytes) {
            *too_long = true;
            return false;
        }
        if (nl) return true;
    }
}

}  // namespace

namespace {

// Connects to the control socket named for `pid`: the descriptor and the pid of the process
// holding the socket (*peer, 0 if unknown), or -1 with errno.
// The socket lives in the process's network namespace and is named by its pid in its own pid
// namespace (a container's): SO_PEERCRED still gives the pid as this process sees it.
int connect_control(pid_t pid, pid_t *peer_pid) {
    *peer_pid = 0;
    int fd = unix_socket_in_net_namespace_of(pid);
    if (fd < 0) return -1;
    sockaddr_un a;
    socklen_t len = protocol::address(pid_in_own_namespace(pid), &a);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), len) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    ucred peer{};
    socklen_t plen = sizeof peer;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &plen) == 0) *peer_pid = peer.pid;
    return fd;
}

// The start time of a process (field 22 of its stat file): with the pid, what tells two
// processes apart.
std::string start_time(int stat_fd) {
    char buf[4096];
    ssize_t n = stat_fd < 0 ? -1 : pread(stat_fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return {};
    buf[n] = 0;
    const char *p = std::strrchr(buf, ')');  // the name may hold spaces and parentheses
    for (int field = 2; p && field < 22; field++) p = std::strchr(p + 1, ' ');
    return p ? std::string(p + 1, std::strcspn(p + 1, " ")) : std::string();
}

// The process's memory file, opened as the proof of ptrace access the agent asks for. The agent
// compares it with its own /proc/self/mem, which in another mount namespace (a container with
// its own /proc) is another procfs's file: then the file is opened through the process's root,
// in its procfs, if that procfs shows the process itself (same start time).
int open_memory_proof(pid_t pid, const std::string &proc) {
    if (other_mount_namespace(pid)) {
        const std::string inner = "/proc/" + std::to_string(pid_in_own_namespace(pid));
        const int ours = open((proc + "/stat").c_str(), O_RDONLY | O_CLOEXEC);
        const int theirs = open_in_target(pid, inner + "/stat");
        const std::string a = start_time(ours), b = start_time(theirs);
        if (ours >= 0) close(ours);
        if (theirs >= 0) close(theirs);
        if (!a.empty() && a == b) {
            const int mem = open_in_target(pid, inner + "/mem");
            if (mem >= 0) return mem;
        }
    }
    return open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
}

}  // namespace

AgentSocket probe_agent(pid_t pid, pid_t *holder) {
    pid_t peer = 0;
    int fd = connect_control(pid, &peer);
    if (fd < 0) return AgentSocket::kNobody;
    close(fd);
    if (holder) *holder = peer;
    return peer == pid ? AgentSocket::kAnswers : AgentSocket::kForeign;
}

bool agent_answers(pid_t pid) {
    return probe_agent(pid, nullptr) == AgentSocket::kAnswers;
}

nlohmann::json request_raw(pid_t pid, const nlohmann::json &req, const std::string &what, bool *connected) {
    // Requests that may start a transition: a process that cannot read its own threads' files
    // gets them first (thread_files.hpp).
    static const char *const kTransitions[] = {"load", "enable", "disable", "unload", "force"};
    const std::string op = req.value("op", std::string());
    if (std::find(std::begin(kTransitions), std::end(kTransitions), op) != std::end(kTransitions))
        pass_thread_files(pid, what);
    return request_with_fds(pid, req, {}, what, connected);
}

nlohmann::json request_with_fds(pid_t pid, const nlohmann::json &req, const std::vector<int> &fds,
                                const std::string &what, bool *connected) {
    *connected = false;
    std::string proc = "/proc/" + std::to_string(pid);
    struct stat st {};
    if (stat(proc.c_str(), &st) != 0) die(std::to_string(pid), errno_text(ESRCH));
    pid_t peer = 0;
    int fd = connect_control(pid, &peer);
    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM) die(what, errno_text(errno));
        die(std::to_string(pid),
            "no graft agent answers in this process (start it with `graft run`, or `graft attach` it): " +
                errno_text(errno));
    }
    // Anyone can bind "@graft/<pid>" for a pid that is not (yet) running an agent: talk only to
    // the process named. Its pid is the one that listened on the socket (translated into our
    // pid namespace), checked before a byte is sent.
    if (peer == 0) {
        close(fd);
        die(what, "cannot tell who holds the control socket of process " + std::to_string(pid) + ": " +
                      errno_text(EPROTO));
    }
    if (peer != pid) {
        close(fd);
        die(what, "the control socket of process " + std::to_string(pid) + " is held by process " +
                      std::to_string(peer) + ", not by " + std::to_string(pid) +
                      "'s agent: " + errno_text(EPERM));
    }
    *connected = true;
    // The proof that we may ptrace the process: the kernel lets us open its memory only then
    // (read-only: the agent only reads through it). If we cannot, the agent refuses us with the
    // reason; opened only now that the peer is known to be the process itself.
    int mem = open_memory_proof(pid, proc);
    std::string line;
    // Read the answer even if sending failed: a refusing agent answers before it reads.
    bool sent = send_with_fds(fd, req.dump() + "\n", mem, fds);
    if (mem >= 0) close(mem);
    bool too_long = false;
    bool got = read_answer(fd, &line, &too_long);
    close(fd);
    if (too_long)
        die(what, "the agent's answer is longer than " + std::to_string(kMaxAnswerBytes >> 20) +
                      " MiB: " + errno_text(EMSGSIZE));
    if ((!got && !sent) || line.empty())
        die(what, "the agent closed the connection: " + errno_text(ECONNRESET));
    if (!got) die(what, "the agent's answer ended before its end of line: " + errno_text(EPROTO));
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
    for (const std::string &c :
         {d + "/" GRAFT_BIN_TO_LIBDIR "/libgraft.so", d + "/../lib/libgraft.so", d + "/libgraft.so"})
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
    for (const std::string &c :
         {d + "/" GRAFT_BIN_TO_INCLUDEDIR, d + "/../include", std::string(GRAFT_SOURCE_INCLUDE)})
        if (exists(c + "/graft/graft.h")) {
            char r[PATH_MAX];
            return realpath(c.c_str(), r) ? std::string(r) : c;
        }
    return d + "/../include";
}

}  // namespace graft::cli
