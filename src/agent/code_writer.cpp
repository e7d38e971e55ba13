#include "agent/code_writer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

namespace graft {
namespace {

// Protection of every page the writes touch, from one read of /proc/self/maps; false if any
// page is unmapped.
bool page_prots(const std::vector<CodeWrite> &writes, std::map<uintptr_t, int> *out) {
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> wanted;  // page -> -1 until found
    for (const auto &w : writes)
        for (uintptr_t p = w.addr & ~(pg - 1); p < w.addr + w.len; p += pg) wanted[p] = -1;
    FILE *f = std::fopen("/proc/self/maps", "re");
    if (!f) return false;
    char line[512];
    while (std::fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perms[5] = {};
        if (std::sscanf(line, "%lx-%lx %4s", &a, &b, perms) != 3) continue;
        int prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
                   (perms[2] == 'x' ? PROT_EXEC : 0);
        for (auto it = wanted.lower_bound(a); it != wanted.end() && it->first < b; ++it) it->second = prot;
    }
    std::fclose(f);
    for (auto &[p, prot] : wanted)
        if (prot < 0) return false;
    *out = wanted;
    return true;
}

}  // namespace

bool write_code(const std::vector<CodeWrite> &writes, std::string *why) {
    if (writes.empty()) return true;
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> prots;
    if (!page_prots(writes, &prots)) {
        *why = "the code is not mapped";
        return false;
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
