#include "agent/service/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
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
auto &g_ring = *new std::deque<LogEntry>;  // never destroyed (see process/symbols.cpp)
uint64_t g_next_seq = 0;
int g_file = -2;  // -2: not opened yet
std::string &g_file_path = *new std::string;
// The log file is a debugging aid inside someone else's process: it may not fill their disk. Past
// this size it is renamed to PATH.1 (replacing the previous one) and started anew, so at most
// twice the cap is kept. GRAFT_LOG_FILE_MAX (bytes) changes the cap.
uint64_t g_file_cap = 16u << 20;
uint64_t g_file_size = 0;

void open_log_file() {
    const char *p = std::getenv("GRAFT_LOG_FILE");
    g_file = -1;
    if (!p || !*p) return;
    if (const char *m = std::getenv("GRAFT_LOG_FILE_MAX"); m && *m) {
        char *end = nullptr;
        unsigned long long v = std::strtoull(m, &end, 10);
        if (end && !*end && v >= 4096) g_file_cap = v;
    }
    g_file_path = p;
    g_file = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    struct stat st {};
    g_file_size = g_file >= 0 && fstat(g_file, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

void write_log_file(const std::string &line) {
    if (g_file == -2) open_log_file();
    if (g_file < 0) return;
    if (g_file_size + line.size() + 1 > g_file_cap && g_file_size > 0) {
        std::string old = g_file_path + ".1";
        close(g_file);
        rename(g_file_path.c_str(), old.c_str());
        g_file = open(g_file_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        g_file_size = 0;
        if (g_file < 0) return;
    }
    // One write per line: another process appending to the same file never splits it.
    std::string l = line + "\n";
    ssize_t n = write(g_file, l.data(), l.size());
    if (n > 0) g_file_size += static_cast<uint64_t>(n);
}
}  // namespace

void log_line(const std::string &line) noexcept {
    // Called from graft_log() (a patch's C code) and every error path: a failed allocation drops
    // the line rather than throwing into the host.
    try {
        std::lock_guard<std::mutex> g(g_log_mutex);
        g_ring.push_back(LogEntry{g_next_seq++, line});
        if (g_ring.size() > kMaxEntries) g_ring.pop_front();
        write_log_file(line);
    } catch (...) {
    }
}

void log_fmt(const char *fmt, ...) noexcept {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    try {
        log_line(buf);
    } catch (...) {  // the std::string of buf
    }
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
