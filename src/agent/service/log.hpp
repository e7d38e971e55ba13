// The agent's log: the kernel's livepatch dmesg lines (docs/commands.md, "graft log") and graft_log() lines
// from patches, in order. Kept in memory for `graft log`, and copied to the file named by $GRAFT_LOG_FILE if
// set (for debugging a process that no longer answers), rotated past $GRAFT_LOG_FILE_MAX bytes (16 MiB) to
// one older file, PATH.1.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace graft {

// Protects the log ring and the log file; a leaf (lock_order.hpp).
extern std::mutex g_log_mutex;

// Never throw: a line that cannot be stored is dropped.
void log_line(const std::string &line) noexcept;
void log_fmt(const char *fmt, ...) noexcept __attribute__((format(printf, 1, 2)));

struct LogEntry {
    uint64_t seq;
    std::string text;
};
// At most `max` entries with seq >= since (the oldest are dropped past a bound); *next = seq to
// ask next, *more = entries remain after these.
std::vector<LogEntry> log_since(uint64_t since, size_t max, uint64_t *next, bool *more);

}  // namespace graft
