#include "agent/service/control.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/proc/passed_task_files.hpp"
#include "agent/process/user_symbols.hpp"
#include "agent/service/log.hpp"
#include "agent/service/request.hpp"
#include "agent/service/status.hpp"
#include "agent/threads/thread_state.hpp"
#include "agent/unwind/stack_check.hpp"
#include "common/protocol.hpp"

namespace graft {
namespace {

using Clock = std::chrono::steady_clock;

// Open connections at most (each holds a socket and possibly a /proc/PID/mem descriptor): past
// it the oldest is dropped, so that connections cannot exhaust the process's descriptors.
constexpr size_t kMaxClients = 32;
// A client has this long from its connection to send its whole request line...
constexpr auto kRequestDeadline = std::chrono::seconds(2);
// ...and this long from the answer being ready to take all of it.
constexpr auto kAnswerDeadline = std::chrono::seconds(10);
// Descriptors accepted in one message; more are closed by the kernel (MSG_CTRUNC). Until the
// client proved its access, 4: a stranger cannot make the host hold more than that for a moment.
// A client that proved it may pass threads' /proc files (task_files), up to the kernel's
// SCM_MAX_FD a message.
constexpr size_t kFdsPerMessage = 4;
constexpr size_t kFdsPerTrustedMessage = 253;
// Passed thread files are kept until the transition that used them ends, or this long if none
// starts (a load that failed): they hold slots of the host's descriptor table.
constexpr auto kTaskFilesUnusedFor = std::chrono::seconds(10);

const char *const kNotTracer =
    "only a user who could ptrace this process (its own user when it is dumpable, or "
    "one with CAP_SYS_PTRACE such as root) may control it";

int g_listen = -1;

// When the passed thread files (passed_task_files.hpp) were installed, and the transition epoch
// then (each transition's start moves it on). Core mutex.
Clock::time_point g_task_files_since;
uint32_t g_task_files_epoch = 0;
// /proc/self/mem, held open (O_PATH) for the life of the agent: it pins the inode that every
// /proc/<pid>/mem opened through the same procfs resolves to, so that a client's descriptor can
// be compared with it (fstat) before it is read. `g_self_mem_st` is its fstat.
int g_self_mem = -1;
struct stat g_self_mem_st {};

// The descriptors of the open clients (socket, then the /proc/PID/mem it sent), two slots per
// client, -1 when free. Written by the worker only (set after accept/receive, cleared before
// close); read by a fork() child, which has no worker, to close the parent's. Relaxed: the child
// reads its own copy made by fork, and no other thread reads them.
std::atomic<int> g_client_fds[2 * kMaxClients];

struct Client {
    int fd = -1;
    int mem_fd = -1;  // the /proc/<pid>/mem descriptor the client sent with its request, or -1
    size_t slot = 0;  // g_client_fds[2 * slot] and [2 * slot + 1]
    bool answering = false;
    bool done = false;  // to be closed at the end of this round
    std::string in;     // the request line so far
    std::string out;    // the answer line
    size_t sent = 0;    // bytes of `out` sent
    Clock::time_point deadline;
    // Fresh per connection, never sent: only a read through a descriptor of this process's own
    // memory, opened by someone the kernel let read it, can return it (proves_access).
    uint64_t nonce[2] = {0, 0};
    bool trusted = false;     // its /proc/<pid>/mem proved access (proves_access), checked on arrival
    std::vector<int> passed;  // descriptors after the proof (task_files), in the order sent
};

nlohmann::json error_json(int err, const std::string &msg) {
    return {{"ok", false}, {"errno", err}, {"error", msg}};
}

nlohmann::json result_json(const OpResult &r) {
    if (r.err) return error_json(r.err, r.message);
    if (!r.patch.empty()) return {{"ok", true}, {"patch", r.patch}};
    return {{"ok", true}};
}

std::string dump_line(const nlohmann::json &answer) {
    try {
        return answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } catch (...) {
        return "{\"ok\":false,\"errno\":5,\"error\":\"internal error\"}\n";
    }
}

// Runs one validated request. The core functions take g_core_mutex themselves.
nlohmann::json execute(const Request &r) {
    switch (r.op) {
        case Op::kPing:
            return {{"ok", true}, {"pid", getpid()}};
        case Op::kLoad: {
            std::string err;
            if (!r.symbols.empty() && !user_symbols_add(r.symbols, &err)) return error_json(EINVAL, err);
            auto answer = result_json(core_load(r.path));
            // How symbols of stripped objects were found for this load: said to the user and logged.
            auto notes = user_symbols_take_notes();
            for (const auto &n : notes) log_line("graft: " + n);
            if (!notes.empty()) answer["notes"] = notes;
            return answer;
        }
        case Op::kDisable:
            return result_json(core_disable(r.name));
        case Op::kEnable:
            return result_json(core_enable(r.name));
        case Op::kForce:
            return result_json(core_force(r.name));
        case Op::kUnload:
            return result_json(core_unload(r.name));
        case Op::kStatus: {
            auto j = status_json();
            j["ok"] = true;
            return j;
        }
        case Op::kThreads:
            return {{"ok", true}, {"threads", threads_json()}};
        case Op::kLog: {
            uint64_t next = 0;
            bool more = false;
            nlohmann::json lines = nlohmann::json::array();
            // Bounded: an answer is one line, and the command reads lines of bounded length.
            for (auto &e : log_since(r.since, 500, &next, &more)) lines.push_back(e.text);
            return {{"ok", true}, {"lines", lines}, {"next", next}, {"more", more}};
        }
        case Op::kSet: {
            std::lock_guard<std::recursive_mutex> g(g_core_mutex);
            if (!r.signal_timeout || !set_signal_timeout(*r.signal_timeout))
                return error_json(EINVAL, "malformed request: 'signal_timeout' out of range");
            return {{"ok", true}};
        }
        case Op::kTaskFiles:  // its descriptors belong to the connection: serve() runs it
            break;
    }
    return error_json(EINVAL, "unknown request");
}

// CAP_SYS_PTRACE in the effective set of process `pid` (its /proc status; false if unreadable).
bool has_cap_sys_ptrace(pid_t pid) {
    if (pid <= 0) return false;
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = 0;
    const char *p = std::strstr(buf, "\nCapEff:");
    if (!p) return false;
    unsigned long long caps = std::strtoull(p + 8, nullptr, 16);
    constexpr int kCapSysPtrace = 19;
    return (caps >> kCapSysPtrace) & 1;
}

// The pre-filter, on the peer's credentials alone (before reading a byte): could this peer pass
// the kernel's ptrace check (__ptrace_may_access) on this process? root, or the same uid and gid
// for the real, effective and saved ids and a dumpable process, or CAP_SYS_PTRACE. Not the
// authority (it ignores Yama, user namespaces, LSMs): proves_access is.
bool may_be_tracer(const ucred &peer) {
    if (peer.uid == 0) return true;
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) == 0 && getresgid(&rg, &eg, &sg) == 0 && peer.uid == r && peer.uid == e &&
        peer.uid == s && peer.gid == rg && peer.gid == eg && peer.gid == sg &&
        prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1)
        return true;
    return has_cap_sys_ptrace(peer.pid);
}

// The proof: the client sent a descriptor of this process's /proc/<pid>/mem, which the kernel
// let it open only if it passed the ptrace access check (PTRACE_MODE_ATTACH, with its uids,
// capabilities, the dumpable flag, Yama), and reading this connection's nonce through it
// returns the nonce. The descriptor is first checked to be that very file (procfs, the inode
// g_self_mem pins): a read through any other descriptor could block the worker (a FUSE file, a
// process's memory under userfaultfd).
bool proves_access(const Client &c) {
    if (c.mem_fd < 0 || g_self_mem < 0) return false;
    struct statfs sf {};
    struct stat st {};
    if (fstatfs(c.mem_fd, &sf) != 0 || sf.f_type != PROC_SUPER_MAGIC) return false;
    if (fstat(c.mem_fd, &st) != 0 || st.st_dev != g_self_mem_st.st_dev || st.st_ino != g_self_mem_st.st_ino)
        return false;
    uint64_t got[2] = {0, 0};
    ssize_t n = pread(c.mem_fd, got, sizeof got, static_cast<off_t>(reinterpret_cast<uintptr_t>(c.nonce)));
    return n == static_cast<ssize_t>(sizeof got) && std::memcmp(got, c.nonce, sizeof got) == 0;
}

// One send that never waits, then the connection is closed: for clients that get no slot.
void refuse_now(int fd, int err, const std::string &msg) {
    std::string out = dump_line(error_json(err, msg));
    (void)!send(fd, out.data(), out.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
}

void close_client(Client &c) {
    g_client_fds[2 * c.slot].store(-1, std::memory_order_relaxed);
    g_client_fds[2 * c.slot + 1].store(-1, std::memory_order_relaxed);
    if (c.mem_fd >= 0) close(c.mem_fd);
    if (c.fd >= 0) close(c.fd);
    for (int fd : c.passed) close(fd);
    c.passed.clear();
    c.fd = c.mem_fd = -1;
    c.done = true;
}

// Sends what the socket takes now; closes the client when all is sent or it is gone.
void send_some(Client &c) {
    while (c.sent < c.out.size()) {
        ssize_t n = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            c.sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    close_client(c);
}

void answer(Client &c, const nlohmann::json &a) {
    c.answering = true;
    c.out = dump_line(a);
    c.sent = 0;
    c.in.clear();
    c.in.shrink_to_fit();
    c.deadline = Clock::now() + kAnswerDeadline;
    send_some(c);
}

// The whole request line is in: check access, then parse and run it (one at a time: the
// worker is the only thread that runs requests).
void serve(Client &c) {
    nlohmann::json a;
    try {
        Request req;
        std::string err;
        if (!proves_access(c)) {
            a = error_json(EACCES, kNotTracer);
        } else if (!parse_request(c.in, &req, &err)) {
            a = error_json(EINVAL, err);
        } else if (req.op == Op::kTaskFiles) {
            std::lock_guard<std::recursive_mutex> g(g_core_mutex);
            const PassedTaskFiles r = passed_task_files_replace(req.tids, &c.passed);
            g_task_files_since = Clock::now();
            g_task_files_epoch = g_view.epoch.load(std::memory_order_relaxed);
            a = {{"ok", true}, {"kept", r.kept}, {"refused", r.refused}};
        } else {
            a = execute(req);
        }
    } catch (const std::exception &e) {
        a = error_json(EIO, std::string("internal error: ") + e.what());
    } catch (...) {
        a = error_json(EIO, "internal error");
    }
    answer(c, a);
}

void keep_fds(Client &c, msghdr &m) {
    for (cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS) continue;
        size_t n = (h->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; i++) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
            // The first descriptor is the proof; others are kept only from a client it proved
            // (task_files), any other is closed at once.
            if (c.mem_fd < 0) {
                c.mem_fd = fd;
                g_client_fds[2 * c.slot + 1].store(fd, std::memory_order_relaxed);
                c.trusted = proves_access(c);
            } else if (c.trusted && c.passed.size() < kMaxPassedTaskFiles) {
                try {
                    c.passed.push_back(fd);
                } catch (...) {  // out of memory: the descriptor is not kept
                    close(fd);
                }
            } else {
                close(fd);
            }
        }
    }
}

// Reads what the client sent so far (never waiting); serves it once its line is complete.
void read_some(Client &c) {
    for (;;) {
        char buf[4096];
        alignas(cmsghdr) char ctl[CMSG_SPACE(kFdsPerTrustedMessage * sizeof(int))];
        iovec iov{buf, sizeof buf};
        msghdr m{};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctl;
        m.msg_controllen = c.trusted ? sizeof ctl : CMSG_SPACE(kFdsPerMessage * sizeof(int));
        ssize_t n = recvmsg(c.fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n >= 0) keep_fds(c, m);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) close_client(c);
            return;
        }
        if (n == 0) {
            answer(c, error_json(EINVAL, "malformed request: the connection ended before a complete line"));
            return;
        }
        auto *nl = static_cast<char *>(std::memchr(buf, '\n', static_cast<size_t>(n)));
        // Anything after the newline is ignored: one request per connection.
        c.in.append(buf, nl ? static_cast<size_t>(nl - buf) : static_cast<size_t>(n));
        if (c.in.size() > kMaxRequestBytes) {
            answer(c, error_json(EINVAL, "malformed request: longer than " +
                                             std::to_string(kMaxRequestBytes) + " bytes"));
            return;
        }
        if (nl) {
            serve(c);
            return;
        }
    }
}

// A free pair of slots in g_client_fds (there is one: at most kMaxClients clients are open).
size_t free_slot(const std::vector<std::unique_ptr<Client>> &clients) {
    for (size_t s = 0; s < kMaxClients; s++) {
        bool used = false;
        for (auto &c : clients)
            if (!c->done && c->slot == s) used = true;
        if (!used) return s;
    }
    return 0;
}

void accept_clients(std::vector<std::unique_ptr<Client>> &clients) {
    // Bounded, so that a flood of connections cannot keep the worker from everything else.
    for (size_t i = 0; i < kMaxClients; i++) {
        int fd = accept4(g_listen, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        ucred peer{};
        socklen_t len = sizeof peer;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || !may_be_tracer(peer)) {
            refuse_now(fd, EACCES, kNotTracer);
            close(fd);
            continue;
        }
        size_t open = 0;
        for (auto &c : clients) open += !c->done;
        if (open >= kMaxClients) {
            // The oldest open client goes: a burst of connections delays nobody for long.
            for (auto &c : clients)
                if (!c->done) {
                    if (!c->answering) refuse_now(c->fd, EBUSY, "too many clients: dropped the oldest");
                    close_client(*c);
                    break;
                }
        }
        auto c = std::make_unique<Client>();
        c->fd = fd;
        c->slot = free_slot(clients);
        c->deadline = Clock::now() + kRequestDeadline;
        if (getrandom(c->nonce, sizeof c->nonce, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof c->nonce)) {
            // No entropy yet (early boot): the inode check in proves_access still binds the
            // descriptor to this process; the nonce then only proves it is this image's memory.
            c->nonce[0] = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
            c->nonce[1] = reinterpret_cast<uintptr_t>(c.get()) ^ 0x9e3779b97f4a7c15ull;
        }
        g_client_fds[2 * c->slot].store(fd, std::memory_order_relaxed);
        clients.push_back(std::move(c));
    }
}

int ms_until(Clock::time_point t, Clock::time_point now) {
    if (t <= now) return 0;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
    return static_cast<int>(std::min<long long>(ms, 1000));
}

// One round of the control socket: waits up to `timeout` ms (less if a client's deadline comes
// first), serves what is ready, accepts, and drops clients past their deadline.
void serve_clients(std::vector<std::unique_ptr<Client>> &clients, std::vector<pollfd> &fds, int timeout) {
    auto now = Clock::now();
    fds.clear();
    fds.push_back({g_listen, POLLIN, 0});
    for (auto &c : clients) {
        timeout = std::min(timeout, ms_until(c->deadline, now));
        fds.push_back({c->fd, static_cast<short>(c->answering ? POLLOUT : POLLIN), 0});
    }
    int rc = poll(fds.data(), fds.size(), timeout);
    if (rc > 0) {
        for (size_t i = 0; i < clients.size(); i++) {
            Client &c = *clients[i];
            if (c.done || !fds[i + 1].revents) continue;
            if (c.answering)
                send_some(c);
            else
                read_some(c);
        }
        if (fds[0].revents & POLLIN) accept_clients(clients);
    }
    now = Clock::now();
    for (auto &c : clients) {
        if (c->done || now < c->deadline) continue;
        if (!c->answering) {
            // The worker may have been busy with another request: take what arrived.
            read_some(*c);
            if (c->done || c->answering) continue;
            refuse_now(c->fd, ETIMEDOUT, "no complete request line within 2 s");
        }
        // An answer not taken in time: dropped, the worker never waits for a reader.
        close_client(*c);
    }
    std::erase_if(clients, [](const std::unique_ptr<Client> &c) { return c->done; });
}

// The start-up step the worker owes (control_start), until it ran: core mutex. A fork() child
// whose parent's worker had not run it yet runs it itself (fork.cpp takes the core mutex around
// fork, so the child sees it either pending or done).
bool (*g_first_step)(std::string *why) = nullptr;

// Closes the passed thread files once a transition started after they came and ended, or
// unused after kTaskFilesUnusedFor. Worker, core mutex held.
void expire_task_files() {
    if (!passed_task_files_count() || transition_retry_ms() >= 0) return;
    if (g_view.epoch.load(std::memory_order_relaxed) != g_task_files_epoch ||
        Clock::now() - g_task_files_since > kTaskFilesUnusedFor)
        passed_task_files_clear();
}

void *worker_main(void *) {
    set_worker_tid(static_cast<pid_t>(syscall(SYS_gettid)));
    stack_check_init_worker();
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        if (auto step = std::exchange(g_first_step, nullptr)) {
            std::string why;
            bool ok = false;
            try {
                ok = step(&why);
            } catch (...) {
                why = "the agent's start-up failed (out of memory?)";
            }
            if (!ok) core_refuse(why);
        }
    }
    // In accept order: the front is the oldest. Worker only.
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<pollfd> fds;
    for (;;) {
        int timeout;
        {
            std::lock_guard<std::recursive_mutex> g(g_core_mutex);
            timeout = transition_retry_ms();
        }
        if (timeout < 0) timeout = 1000;
        try {
            serve_clients(clients, fds, timeout);
        } catch (...) {
            // bad_alloc: drop every client rather than let it out of the worker.
            for (auto &c : clients)
                if (!c->done) close_client(*c);
            clients.clear();
        }
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        expire_task_files();
        if (transition_retry_ms() == 0) {
            try {
                try_complete_transition();
            } catch (const std::exception &e) {
                core_refuse(std::string("transition retry failed: ") + e.what());
            }
        }
    }
    return nullptr;
}

}  // namespace

bool control_start(std::string *why, bool (*first_step)(std::string *why)) {
    if (first_step) g_first_step = first_step;  // the caller is the only thread of the agent yet
    for (auto &f : g_client_fds) f.store(-1, std::memory_order_relaxed);
    // O_PATH: a process that switched users (a daemon started as root) is not dumpable, and may
    // not read its own /proc files; pinning the inode and fstat need no read permission.
    g_self_mem = open("/proc/self/mem", O_PATH | O_CLOEXEC);
    if (g_self_mem < 0 || fstat(g_self_mem, &g_self_mem_st) != 0) {
        *why = std::string("cannot open /proc/self/mem to check clients against: ") + std::strerror(errno);
        if (g_self_mem >= 0) close(g_self_mem);
        g_self_mem = -1;
        return false;
    }
    g_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (g_listen < 0) {
        *why = std::string("socket: ") + std::strerror(errno);
        return false;
    }
    sockaddr_un a;
    socklen_t alen = protocol::address(getpid(), &a);
    if (bind(g_listen, reinterpret_cast<sockaddr *>(&a), alen) != 0 || listen(g_listen, 64) != 0) {
        *why = std::string("cannot listen on the control socket: ") + std::strerror(errno);
        close(g_listen);
        g_listen = -1;
        return false;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    // Signals go to the program's threads, not to graft's worker (nor to the helper it starts,
    // which inherits its mask) — except SIGTRAP: while graft rewrites an ordinary entry its first
    // byte is an int3, and a worker that calls that function meanwhile (libc's strlen, say) must be
    // sent on by graft's handler like any thread; with SIGTRAP blocked the kernel kills the process.
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGTRAP);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&t, &attr, worker_main, nullptr);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        *why = std::string("cannot start the worker thread: ") + std::strerror(rc);
        return false;
    }
    pthread_setname_np(t, "graft-worker");
    return true;
}

bool control_restart_in_child(std::string *why) {
    // All are the parent's: its worker keeps serving them. The child's /proc/self/mem is
    // another file (another process), opened again by control_start.
    for (auto &f : g_client_fds)
        if (int c = f.exchange(-1, std::memory_order_relaxed); c >= 0) close(c);
    if (g_listen >= 0) close(g_listen);
    g_listen = -1;
    if (g_self_mem >= 0) close(g_self_mem);
    g_self_mem = -1;
    return control_start(why);
}

}  // namespace graft
