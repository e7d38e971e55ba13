#include "agent/control.hpp"

#include <poll.h>
#include <pthread.h>

#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>
#include <atomic>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <nlohmann/json.hpp>

#include "agent/core.hpp"
#include "agent/log.hpp"
#include "agent/stack_check.hpp"
#include "agent/thread_state.hpp"
#include "agent/transition.hpp"
#include "common/protocol.hpp"

namespace graft {
namespace {

int g_listen = -1;
// The client being served (worker only; read by a fork() child, which has no worker).
std::atomic<int> g_client{-1};

nlohmann::json error_json(int err, const std::string &msg) {
    return {{"ok", false}, {"errno", err}, {"error", msg}};
}

nlohmann::json result_json(const OpResult &r) {
    if (r.err) return error_json(r.err, r.message);
    if (!r.patch.empty()) return {{"ok", true}, {"patch", r.patch}};
    return {{"ok", true}};
}

nlohmann::json handle(const nlohmann::json &req) {
    if (!req.is_object() || !req.contains("op") || !req["op"].is_string())
        return error_json(EINVAL, "malformed request: expected {\"op\": ...}");
    const std::string op = req["op"];
    auto str = [&](const char *k) -> std::string {
        if (!req.contains(k) || !req[k].is_string())
            throw std::invalid_argument(std::string("missing string field '") + k + "'");
        return req[k];
    };
    if (op == "ping") return {{"ok", true}, {"pid", getpid()}};
    if (op == "load") return result_json(core_load(str("path")));
    if (op == "disable") return result_json(core_disable(str("name")));
    if (op == "enable") return result_json(core_enable(str("name")));
    if (op == "force") return result_json(core_force(str("name")));
    if (op == "unload") return result_json(core_unload(str("name")));
    if (op == "status") {
        auto j = core_status();
        j["ok"] = true;
        return j;
    }
    if (op == "threads") return {{"ok", true}, {"threads", core_threads()}};
    if (op == "log") {
        uint64_t since =
            req.contains("since") && req["since"].is_number_unsigned() ? req["since"].get<uint64_t>() : 0;
        uint64_t next = 0;
        bool more = false;
        nlohmann::json lines = nlohmann::json::array();
        // Bounded: an answer is one line, and the command reads lines of at most 1 MiB.
        for (auto &e : log_since(since, 500, &next, &more)) lines.push_back(e.text);
        return {{"ok", true}, {"lines", lines}, {"next", next}, {"more", more}};
    }
    if (op == "set") {
        if (req.contains("signal_timeout") && req["signal_timeout"].is_number()) {
            std::lock_guard<std::recursive_mutex> g(g_core_mutex);
            set_signal_timeout(req["signal_timeout"].get<double>());
            return {{"ok", true}};
        }
        return error_json(EINVAL, "malformed request: nothing to set");
    }
    return error_json(EINVAL, "unknown request '" + op + "'");
}

// One request line, read within a deadline: a client that sends nothing, or half a line, does
// not hold the worker (and the transition it retries) for more than that.
bool read_request(int fd, std::string *line) {
    constexpr size_t kLimit = 1 << 20;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    line->clear();
    char buf[4096];
    for (;;) {
        auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
                .count();
        if (left <= 0) return false;
        pollfd p{fd, POLLIN, 0};
        if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
        // Peek so that nothing past the newline is consumed.
        ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (n <= 0) return false;
        auto *nl = static_cast<char *>(memchr(buf, '\n', static_cast<size_t>(n)));
        size_t take = nl ? static_cast<size_t>(nl - buf) + 1 : static_cast<size_t>(n);
        n = recv(fd, buf, take, MSG_DONTWAIT);
        if (n <= 0) return false;
        line->append(buf, nl ? static_cast<size_t>(n) - 1 : static_cast<size_t>(n));
        if (nl) return true;
        if (line->size() > kLimit) return false;
    }
}

void serve_client(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    std::string line;
    nlohmann::json answer;
    bool got = read_request(fd, &line);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        answer = error_json(EACCES, "only the process's own user or root may control it");
    } else {
        if (!got) {
            answer = error_json(EINVAL, "malformed request: no complete line");
        } else {
            try {
                answer = handle(nlohmann::json::parse(line));
            } catch (const std::exception &e) {
                answer = error_json(EINVAL, std::string("malformed request: ") + e.what());
            }
        }
    }
    std::string out;
    try {
        out = answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } catch (...) {
        out = "{\"ok\":false,\"errno\":5,\"error\":\"internal error\"}\n";
    }
    protocol::write_all(fd, out);
}

void *worker_main(void *) {
    core_set_worker_tid(static_cast<pid_t>(syscall(SYS_gettid)));
    stack_check_init_worker();
    for (;;) {
        int timeout;
        {
            std::lock_guard<std::recursive_mutex> g(g_core_mutex);
            timeout = transition_retry_ms();
        }
        pollfd p{g_listen, POLLIN, 0};
        int rc = poll(&p, 1, timeout < 0 ? 1000 : timeout);
        if (rc > 0 && (p.revents & POLLIN)) {
            int c = accept4(g_listen, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                g_client.store(c, std::memory_order_relaxed);
                try {
                    serve_client(c);
                } catch (...) {
                }
                g_client.store(-1, std::memory_order_relaxed);
                close(c);
            }
        }
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
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

bool control_start(std::string *why) {
    g_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g_listen < 0) {
        *why = std::string("socket: ") + std::strerror(errno);
        return false;
    }
    sockaddr_un a;
    socklen_t alen = protocol::address(getpid(), &a);
    if (bind(g_listen, reinterpret_cast<sockaddr *>(&a), alen) != 0 || listen(g_listen, 16) != 0) {
        *why = std::string("cannot listen on the control socket: ") + std::strerror(errno);
        close(g_listen);
        g_listen = -1;
        return false;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    // Signals go to the program's threads, not to graft's worker.
    sigset_t all, old;
    sigfillset(&all);
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
    // Both are the parent's: its worker keeps serving them.
    if (int c = g_client.exchange(-1); c >= 0) close(c);
    if (g_listen >= 0) close(g_listen);
    g_listen = -1;
    return control_start(why);
}

}  // namespace graft
