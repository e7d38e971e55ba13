#include "agent/proc/mappings.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace graft {
namespace {

// The PROCMAP_QUERY ioctl of /proc/PID/maps (Linux 6.11, include/uapi/linux/fs.h): one mapping's
// facts by address. Declared here because older kernels' headers (Debian 12's) lack it; the
// layout is the kernel's ABI, extended only at its end (the `size` field says how much we know).
struct ProcmapQuery {
    uint64_t size;
    uint64_t query_flags;
    uint64_t query_addr;
    uint64_t vma_start;
    uint64_t vma_end;
    uint64_t vma_flags;
    uint64_t vma_page_size;
    uint64_t vma_offset;
    uint64_t inode;
    uint32_t dev_major;
    uint32_t dev_minor;
    uint32_t vma_name_size;
    uint32_t build_id_size;
    uint64_t vma_name_addr;
    uint64_t build_id_addr;
};
constexpr unsigned long kProcmapQuery = _IOWR('f', 17, ProcmapQuery);
static_assert(sizeof(ProcmapQuery) == 104 && kProcmapQuery == 0xc0686611);
constexpr uint64_t kVmaReadable = 1, kVmaWritable = 2, kVmaExecutable = 4;

// Cleared when the ioctl fails for any reason but an unmapped page (ENOTTY, EINVAL: a kernel
// before 6.11), or once the process runs under a seccomp filter: the whole file from then on.
// Relaxed: a stale true costs one more look.
std::atomic<bool> g_query_works{true};

// Whether the process runs under a seccomp filter (/proc/self/status, "Seccomp: 2"). The agent
// makes no system call a filter might kill it for that it did not make before: `graft attach`
// checks a filtered process's filters against the agent's calls, which do not include this
// ioctl, and a `graft run` process may install a filter at any time (filters are never removed:
// once seen, for good).
bool seccomp_filtered() {
    const int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return true;
    buf[n] = 0;
    const char *at = std::strstr(buf, "\nSeccomp:");
    if (!at) return false;  // a kernel without seccomp
    at += std::strlen("\nSeccomp:");
    while (*at == ' ' || *at == '\t') at++;
    return *at != '0';
}

// PROCMAP_QUERY for every page; false if the kernel lacks it (or refused, or a page is unmapped:
// the caller reads the whole file and decides).
bool query_each(std::map<uintptr_t, int> *pages) {
    if (!g_query_works.load(std::memory_order_relaxed)) return false;
    if (seccomp_filtered()) {
        g_query_works.store(false, std::memory_order_relaxed);
        return false;
    }
    const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = true;
    for (auto &[page, prot] : *pages) {
        ProcmapQuery q{};
        q.size = sizeof q;
        q.query_addr = page;
        if (ioctl(fd, kProcmapQuery, &q) != 0 || q.vma_start > page || q.vma_end <= page) {
            if (errno != ENOENT) g_query_works.store(false, std::memory_order_relaxed);
            ok = false;
            break;
        }
        prot = ((q.vma_flags & kVmaReadable) ? PROT_READ : 0) |
               ((q.vma_flags & kVmaWritable) ? PROT_WRITE : 0) |
               ((q.vma_flags & kVmaExecutable) ? PROT_EXEC : 0);
    }
    close(fd);
    return ok;
}

// Parses a hexadecimal number at *p, moving *p past it.
uintptr_t parse_hex(const char **p) {
    uintptr_t v = 0;
    for (const char *s = *p;; s++) {
        int d = *s >= '0' && *s <= '9' ? *s - '0' : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 : -1;
        if (d < 0) {
            *p = s;
            return v;
        }
        v = v << 4 | static_cast<uintptr_t>(d);
    }
}

}  // namespace

bool page_protections(std::map<uintptr_t, int> *pages) {
    if (pages->empty() || query_each(pages)) return true;
    // One read of the whole file, parsed by hand: it has a line per mapping, two per thread
    // stack (100 KB, a millisecond to read, at 1000 threads), so only where the kernel cannot
    // be asked page by page.
    for (auto &[page, prot] : *pages) prot = -1;
    const std::string text = read_self_maps();
    for (size_t pos = 0; pos < text.size();) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        const char *p = text.c_str() + pos;
        pos = eol + 1;
        uintptr_t a = parse_hex(&p);
        if (*p++ != '-') continue;
        uintptr_t b = parse_hex(&p);
        if (*p++ != ' ' || eol - static_cast<size_t>(p - text.c_str()) < 3) continue;
        auto it = pages->lower_bound(a);
        if (it == pages->end() || it->first >= b) continue;
        int prot =
            (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) | (p[2] == 'x' ? PROT_EXEC : 0);
        for (; it != pages->end() && it->first < b; ++it) it->second = prot;
    }
    for (auto &[page, prot] : *pages)
        if (prot < 0) return false;
    return true;
}

std::string read_self_maps() {
    std::string text;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buf[65536];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    close(fd);
    return text;
}

std::vector<std::pair<uintptr_t, uintptr_t>> process_mappings() {
    std::vector<std::pair<uintptr_t, uintptr_t>> v;
    const std::string text = read_self_maps();
    for (size_t pos = 0; pos < text.size();) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        unsigned long a = 0, b = 0;
        if (std::sscanf(text.c_str() + pos, "%lx-%lx", &a, &b) == 2) v.emplace_back(a, b);
        pos = eol + 1;
    }
    return v;
}

}  // namespace graft
