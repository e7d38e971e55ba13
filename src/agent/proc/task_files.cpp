#include "agent/proc/task_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "agent/proc/passed_task_files.hpp"

namespace graft {
namespace {

// The pass's /proc/self/task (TaskDir), -1 outside a pass. Worker only.
int g_task_dir = -1;

// Reads a /proc file from its start into buf (NUL-terminated).
bool pread_text(int fd, char *buf, size_t len) {
    ssize_t n = pread(fd, buf, len - 1, 0);
    if (n <= 0) return false;
    buf[n] = 0;
    return true;
}

// Reads a small /proc file of a thread into buf (NUL-terminated): 0, or an errno, ENOENT or
// ESRCH if the thread is gone. Raw open/read: no stdio buffer to allocate for a file read once.
int read_task_file_err(pid_t tid, const char *leaf, char *buf, size_t len) {
    int fd = open_task_file(tid, leaf);
    if (fd < 0 && errno == EACCES && std::strcmp(leaf, "syscall") == 0) {
        // Not dumpable: the file is root's. A descriptor root passed reads it (passed_task_files.hpp).
        // One that fails names an earlier thread of the same tid (ESRCH): the live one stays
        // unreadable, never "gone".
        const int passed = passed_syscall_file(tid);
        ssize_t n = passed >= 0 ? pread(passed, buf, len - 1, 0) : -1;
        if (n <= 0) return EACCES;
        buf[n] = 0;
        return 0;
    }
    if (fd < 0) return errno;
    ssize_t n = pread(fd, buf, len - 1, 0);
    int e = n < 0 ? errno : n == 0 ? ESRCH : 0;  // empty: the task died after the open
    close(fd);
    if (e == 0) buf[n] = 0;
    return e;
}

bool read_task_file(pid_t tid, const char *leaf, char *buf, size_t len) {
    return read_task_file_err(tid, leaf, buf, len) == 0;
}

// Parses the next unsigned number of `*p` (decimal, or hex with 0x), moving *p past it.
bool next_number(const char **p, unsigned long long *out) {
    const char *s = *p;
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    if (*s < '0' || *s > '9') return false;
    unsigned long long v = 0;
    if (s[0] == '0' && s[1] == 'x') {
        for (s += 2;; s++) {
            int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
            if (d < 0) break;
            v = v << 4 | static_cast<unsigned>(d);
        }
    } else {
        for (; *s >= '0' && *s <= '9'; s++) v = v * 10 + static_cast<unsigned>(*s - '0');
    }
    *out = v;
    *p = s;
    return true;
}

}  // namespace

TaskDir::TaskDir() {
    g_task_dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

TaskDir::~TaskDir() {
    if (g_task_dir >= 0) close(g_task_dir);
    g_task_dir = -1;
}

std::vector<pid_t> list_tids() {
    std::vector<pid_t> v;
    DIR *d = opendir("/proc/self/task");
    if (!d) return v;
    while (dirent *e = readdir(d))
        if (e->d_name[0] != '.') v.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
    closedir(d);
    return v;
}

std::string read_thread_name(pid_t tid) {
    char path[64], buf[64] = {};
    std::snprintf(path, sizeof path, "/proc/self/task/%d/comm", tid);
    FILE *f = std::fopen(path, "re");
    if (!f) return {};
    if (std::fgets(buf, sizeof buf, f)) buf[std::strcspn(buf, "\n")] = 0;
    std::fclose(f);
    return buf;
}

int open_task_file(pid_t tid, const char *leaf) {
    char path[64];
    std::snprintf(path, sizeof path, "%d/%s", tid, leaf);
    int fd = g_task_dir >= 0 ? openat(g_task_dir, path, O_RDONLY | O_CLOEXEC) : -1;
    if (fd < 0) {
        char full[96];
        std::snprintf(full, sizeof full, "/proc/self/task/%s", path);
        fd = open(full, O_RDONLY | O_CLOEXEC);
    }
    return fd;
}

bool parse_schedstat(const char *text, unsigned long long *cpu_ns, unsigned long long *slices) {
    unsigned long long run, wait, n;
    if (!next_number(&text, &run) || !next_number(&text, &wait) || !next_number(&text, &n) || n == 0)
        return false;
    *cpu_ns = run;
    *slices = n;
    return true;
}

int parse_syscall(const char *text, Frozen *fz) {
    fz->syscall_line = text;
    fz->sleeping = std::strncmp(text, "running", 7) != 0;
    if (!fz->sleeping) return 0;
    unsigned long long vals[10];
    int n = 0;
    const char *p = text;
    if (*p == '-') p += 2;  // "-1 sp pc": blocked, but not in a system call
    while (n < 10 && next_number(&p, &vals[n])) n++;
    if (n < 2) return EPROTO;
    fz->sp = vals[n - 2];
    fz->pc = vals[n - 1];
    return 0;
}

void parse_status(char *text, int signal, Frozen *fz) {
    unsigned long long v = 0, sum = 0, blk = 0;
    char *save = nullptr;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(nullptr, "\n", &save)) {
        if (std::sscanf(l, "voluntary_ctxt_switches: %llu", &v) == 1) {
            sum += v;
            fz->voluntary = v;
        } else if (std::sscanf(l, "nonvoluntary_ctxt_switches: %llu", &v) == 1) {
            sum += v;
        } else if (std::sscanf(l, "SigBlk: %llx", &blk) == 1 && signal > 0) {
            fz->sig_blocked = (blk >> (signal - 1)) & 1;
        }
    }
    fz->ctx_switches = sum;
}

int read_syscall_err(pid_t tid, Frozen *fz) {
    char buf[256];
    if (int e = read_task_file_err(tid, "syscall", buf, sizeof buf)) return e;
    return parse_syscall(buf, fz);
}

bool read_status(pid_t tid, int signal, Frozen *fz) {
    char buf[4096];
    if (!read_task_file(tid, "status", buf, sizeof buf)) return false;
    parse_status(buf, signal, fz);
    return true;
}

bool read_frozen(pid_t tid, int signal, Frozen *fz) {
    return read_syscall_err(tid, fz) == 0 && read_status(tid, signal, fz);
}

bool read_schedstat(pid_t tid, unsigned long long *cpu_ns, unsigned long long *slices) {
    char buf[128];
    return read_task_file(tid, "schedstat", buf, sizeof buf) && parse_schedstat(buf, cpu_ns, slices);
}

bool pread_timeslices(int fd, unsigned long long *slices) {
    char buf[128];
    unsigned long long cpu;
    return fd >= 0 && pread_text(fd, buf, sizeof buf) && parse_schedstat(buf, &cpu, slices);
}

}  // namespace graft
