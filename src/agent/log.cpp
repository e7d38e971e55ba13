#include "agent/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>

namespace graft {
// Protects the ring and the log file. Never taken on the call path of a patched function by
// graft itself; graft_log() takes it for the patch that chose to log. The last lock in the
// agent's order (fork.cpp).
std::mutex g_log_mutex;
namespace {
constexpr size_t kMaxEntries = 100000;
auto &g_ring = *new std::deque<LogEntry>;  // never destroyed (see objects.cpp)
uint64_t g_next_seq = 0;
int g_file = -2;  // -2: not opened yet
}  // namespace

void log_line(const std::string &line) {
    std::lock_guard<std::mutex> g(g_log_mutex);
    g_ring.push_back(LogEntry{g_next_seq++, line});
    if (g_ring.size() > kMaxEntries) g_ring.pop_front();
    if (g_file == -2) {
        const char *p = std::getenv("GRAFT_LOG_FILE");
        g_file = p && *p ? open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : -1;
    }
    if (g_file >= 0) {
        std::string l = line + "\n";
        ssize_t n = write(g_file, l.data(), l.size());
        (void)n;
    }
}

void log_fmt(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_line(buf);
}

std::vector<LogEntry> log_since(uint64_t since, size_t max, uint64_t *next, bool *more) {
    std::lock_guard<std::mutex> g(g_log_mutex);
    std::vector<LogEntry> v;
    *next = g_next_seq;
    *more = false;
    for (const auto &e : g_ring) {
        if (e.seq < since) continue;
        if (v.size() == max) {
            *next = e.seq;
            *more = true;
            break;
        }
        v.push_back(e);
    }
    return v;
}

}  // namespace graft
