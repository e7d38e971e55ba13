#include "agent/process/code_writer.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "agent/proc/mappings.hpp"

namespace graft {
namespace {

#ifndef PR_GET_MDWE
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif

bool g_broken = false;  // core mutex (code_writer.hpp)
// A code page refused to become writable (sticky). Relaxed: a hint read by patch-file checks
// outside the core mutex; write_code() sets it under the mutex.
std::atomic<bool> g_locked{false};
std::string &g_broken_why = *new std::string;  // never destroyed: read by a late status

std::string hex_of(uintptr_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "%lx", static_cast<unsigned long>(v));
    return b;
}

// Protection of every page the writes touch; false if any page is unmapped.
bool page_prots(const std::vector<CodeWrite> &writes, std::map<uintptr_t, int> *out) {
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> wanted;
    for (const auto &w : writes)
        for (uintptr_t p = w.addr & ~(pg - 1); p < w.addr + w.len; p += pg) wanted[p] = -1;
    if (!page_protections(&wanted)) return false;
    *out = std::move(wanted);
    return true;
}

// One write as one store (1, 2 or 8 bytes, naturally aligned), or a copy, on a writable page.
// Release: pairs with nothing in graft (a thread executing the bytes does not synchronise); it
// keeps the compiler from reordering the stores of a batch, whose order write_code() promises.
void store(const CodeWrite &w) {
    switch (w.len) {
        case 1:
            __atomic_store_n(reinterpret_cast<uint8_t *>(w.addr), w.bytes[0], __ATOMIC_RELEASE);
            break;
        case 2: {
            uint16_t v;
            std::memcpy(&v, w.bytes, 2);
            __atomic_store_n(reinterpret_cast<uint16_t *>(w.addr), v, __ATOMIC_RELEASE);
            break;
        }
        case 8: {
            uint64_t v;
            std::memcpy(&v, w.bytes, 8);
            __atomic_store_n(reinterpret_cast<uint64_t *>(w.addr), v, __ATOMIC_RELEASE);
            break;
        }
        default:
            std::memcpy(reinterpret_cast<void *>(w.addr), w.bytes, w.len);
    }
}

// Whether every page of `w` was writable before write_code() changed anything (data: a block's
// slot), so that it is stored as is.
bool already_writable(const CodeWrite &w, const std::map<uintptr_t, int> &prots, uintptr_t pg) {
    for (uintptr_t p = w.addr & ~(pg - 1); p < w.addr + w.len; p += pg) {
        auto it = prots.find(p);
        if (it == prots.end() || !(it->second & PROT_WRITE)) return false;
    }
    return true;
}

// Closes a descriptor when it goes out of scope.
struct FdCloser {
    int fd;
    ~FdCloser() {
        if (fd >= 0) close(fd);
    }
};

bool pwrite_all(int fd, const uint8_t *bytes, size_t len, uintptr_t addr) {
    ssize_t n;
    do n = pwrite(fd, bytes, len, static_cast<off_t>(addr));
    while (n < 0 && errno == EINTR);
    return n == static_cast<ssize_t>(len);
}

// The writes through /proc/self/mem (code_writer.hpp). Checked first, so that a refusal changes
// nothing: a 2- or 8-byte store that changes more than one byte cannot be one there.
bool write_through_mem(const std::vector<CodeWrite> &writes, const std::map<uintptr_t, int> &prots,
                       int refused, std::string *why) {
    struct One {
        uintptr_t addr;
        const uint8_t *bytes;
        size_t len;
        const CodeWrite *direct;  // a write to a page that is writable anyway: stored as is
    };
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::vector<One> plan;
    for (const auto &w : writes) {
        if (already_writable(w, prots, pg)) {
            plan.push_back({w.addr, w.bytes, w.len, &w});
            continue;
        }
        if (w.len != 2 && w.len != 8) {
            plan.push_back({w.addr, w.bytes, w.len, nullptr});
            continue;
        }
        const auto *now = reinterpret_cast<const uint8_t *>(w.addr);
        int differ = -1, count = 0;
        for (int i = 0; i < w.len; i++)
            if (now[i] != w.bytes[i]) differ = i, count++;
        if (count > 1) {
            *why = "code pages may not be made writable here (MDWE, a seccomp filter or an LSM: " +
                   std::string(std::strerror(refused)) + "), and the " + std::to_string(w.len) +
                   "-byte store at 0x" + hex_of(w.addr) + " changes " + std::to_string(count) +
                   " bytes at once, which only a writable page does atomically";
            return false;
        }
        if (count == 1)
            plan.push_back({w.addr + static_cast<uintptr_t>(differ), w.bytes + differ, 1, nullptr});
    }
    FdCloser mem{open("/proc/self/mem", O_RDWR | O_CLOEXEC)};
    if (mem.fd < 0) {
        *why = std::string(
                   "the process forbids writable code, and /proc/self/mem cannot be opened to write it: ") +
               std::strerror(errno);
        return false;
    }
    for (size_t i = 0; i < plan.size(); i++)
        if (plan[i].direct) {
            store(*plan[i].direct);
        } else if (!pwrite_all(mem.fd, plan[i].bytes, plan[i].len, plan[i].addr)) {
            *why = "cannot write the code at 0x" + hex_of(plan[i].addr) +
                   " through /proc/self/mem: " + std::strerror(errno);
            // The earlier writes of the batch stay: graft's records no longer say what the code is.
            if (i > 0) code_writer_mark_broken(*why);
            return false;
        }
    return true;
}

}  // namespace

bool code_pages_locked() {
    if (g_locked.load(std::memory_order_relaxed)) return true;
    const int mdwe = prctl(PR_GET_MDWE, 0, 0, 0, 0);
    bool locked = mdwe > 0 && (static_cast<unsigned long>(mdwe) & PR_MDWE_REFUSE_EXEC_GAIN);
    // A seccomp filter (systemd's MemoryDenyWriteExecute=) or an LSM may refuse the same without
    // MDWE: asked of a page of graft's own, which is never executed.
    // Neither can be undone, so a yes is kept.
    const size_t pg = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void *p =
        locked ? MAP_FAILED : mmap(nullptr, pg, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
        locked =
            mprotect(p, pg, PROT_READ | PROT_WRITE | PROT_EXEC) != 0 && (errno == EACCES || errno == EPERM);
        munmap(p, pg);
    }
    if (locked) g_locked.store(true, std::memory_order_relaxed);
    return locked;
}

bool make_executable(void *p, size_t len, std::string *why) {
    if (mprotect(p, len, PROT_READ | PROT_EXEC) == 0) return true;
    const int e = errno;
    if (e != EACCES && e != EPERM) {
        *why = std::string("cannot make the code executable: ") + std::strerror(e);
        return false;
    }
    // Written memory may not become executable (MDWE), but memory may be mapped executable: the
    // same bytes, into a fresh executable mapping, through /proc/self/mem.
    const std::vector<uint8_t> bytes(static_cast<const uint8_t *>(p), static_cast<const uint8_t *>(p) + len);
    if (mmap(p, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != p) {
        *why = std::string("cannot map code executable: ") + std::strerror(errno);
        return false;
    }
    FdCloser mem{open("/proc/self/mem", O_RDWR | O_CLOEXEC)};
    if (mem.fd < 0 || !pwrite_all(mem.fd, bytes.data(), len, reinterpret_cast<uintptr_t>(p))) {
        *why = "cannot write the code at 0x" + hex_of(reinterpret_cast<uintptr_t>(p)) +
               " through /proc/self/mem: " + std::strerror(errno);
        return false;
    }
    return true;
}

bool write_code(const std::vector<CodeWrite> &writes, std::string *why) {
    if (writes.empty()) return true;
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> prots;
    if (!page_prots(writes, &prots)) {
        *why = "the code is not mapped";
        return false;
    }
    std::map<uintptr_t, int> changed;
    // Read-only pages too: a generated patch's fields (graft_reloc) may be in its read-only data
    // (an exception table naming a type of the target), written before anything reads them.
    for (auto &[page, prot] : prots) {
        if (prot & PROT_WRITE) continue;
        if (mprotect(reinterpret_cast<void *>(page), pg, prot | PROT_WRITE) != 0) {
            int e = errno;
            for (auto &[p2, prot2] : changed) mprotect(reinterpret_cast<void *>(p2), pg, prot2);
            // Writable and executable at once is refused (MDWE: EACCES; an LSM or a seccomp
            // filter: EACCES or EPERM): the same bytes another way, without any such page.
            if ((e == EACCES || e == EPERM) && (prot & PROT_EXEC)) {
                g_locked.store(true, std::memory_order_relaxed);
                return write_through_mem(writes, prots, e, why);
            }
            *why = std::string("cannot make the code writable: ") + std::strerror(e);
            return false;
        }
        changed[page] = prot;
    }
    for (const auto &w : writes) store(w);
    for (auto &[page, prot] : changed)
        if (mprotect(reinterpret_cast<void *>(page), pg, prot) != 0)
            code_writer_mark_broken("a code page at 0x" + hex_of(page) +
                                    " could not be made read-only again after a write (" +
                                    std::strerror(errno) + "): it stays writable and executable");
    return true;
}

void code_writer_mark_broken(const std::string &why) {
    if (g_broken) return;  // the first cause is the one to report
    g_broken = true;
    g_broken_why = why;
}

bool code_writer_broken(std::string *why) {
    if (g_broken) *why = g_broken_why;
    return g_broken;
}

}  // namespace graft
