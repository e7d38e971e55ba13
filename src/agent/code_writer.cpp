#include "agent/code_writer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

namespace graft {
namespace {

// Protection of every page of [lo, hi) as /proc/self/maps shows it; false if any is unmapped.
bool page_prots(uintptr_t lo, uintptr_t hi, std::map<uintptr_t, int> *out) {
    FILE *f = std::fopen("/proc/self/maps", "re");
    if (!f) return false;
    char line[512];
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    while (std::fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perms[5] = {};
        if (std::sscanf(line, "%lx-%lx %4s", &a, &b, perms) != 3) continue;
        if (b <= lo || a >= hi) continue;
        int prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
                   (perms[2] == 'x' ? PROT_EXEC : 0);
        for (uintptr_t p = std::max<uintptr_t>(a, lo & ~(pg - 1)); p < b && p < hi; p += pg) (*out)[p] = prot;
    }
    std::fclose(f);
    for (uintptr_t p = lo & ~(pg - 1); p < hi; p += pg)
        if (!out->count(p)) return false;
    return true;
}

}  // namespace

bool write_code(const std::vector<CodeWrite> &writes, std::string *why) {
    if (writes.empty()) return true;
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> prots;
    for (const auto &w : writes) {
        if (!page_prots(w.addr, w.addr + w.len, &prots)) {
            *why = "the code is not mapped";
            return false;
        }
    }
    std::map<uintptr_t, int> changed;
    for (auto &[page, prot] : prots) {
        if (!(prot & PROT_EXEC)) continue;
        if (prot & PROT_WRITE) continue;
        if (mprotect(reinterpret_cast<void *>(page), pg, prot | PROT_WRITE) != 0) {
            int e = errno;
            for (auto &[p2, prot2] : changed) mprotect(reinterpret_cast<void *>(p2), pg, prot2);
            *why = std::string("cannot make the code writable: ") + std::strerror(e);
            return false;
        }
        changed[page] = prot;
    }
    for (const auto &w : writes) {
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
    for (auto &[page, prot] : changed) mprotect(reinterpret_cast<void *>(page), pg, prot);
    return true;
}

}  // namespace graft
