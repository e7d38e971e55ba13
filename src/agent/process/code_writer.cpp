#include "agent/process/code_writer.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>

#include "agent/proc/mappings.hpp"

namespace graft {
namespace {

bool g_broken = false;                         // core mutex (code_writer.hpp)
std::string &g_broken_why = *new std::string;  // never destroyed: read by a late status

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

std::string hex_of(uintptr_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "%lx", static_cast<unsigned long>(v));
    return b;
}

// Protection of every page the writes touch, from one read of /proc/self/maps; false if any
// page is unmapped. Parsed by hand: the file has a line per mapping, two per thread stack, and
// is read at every batch of writes.
bool page_prots(const std::vector<CodeWrite> &writes, std::map<uintptr_t, int> *out) {
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::map<uintptr_t, int> wanted;  // page -> -1 until found
    for (const auto &w : writes)
        for (uintptr_t p = w.addr & ~(pg - 1); p < w.addr + w.len; p += pg) wanted[p] = -1;
    const std::string text = read_self_maps();
    if (text.empty()) return false;
    for (size_t pos = 0; pos < text.size();) {
        size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        const char *p = text.c_str() + pos;
        pos = eol + 1;
        uintptr_t a = parse_hex(&p);
        if (*p++ != '-') continue;
        uintptr_t b = parse_hex(&p);
        if (*p++ != ' ' || eol - (p - text.c_str()) < 3) continue;
        auto it = wanted.lower_bound(a);
        if (it == wanted.end() || it->first >= b) continue;
        int prot =
            (p[0] == 'r' ? PROT_READ : 0) | (p[1] == 'w' ? PROT_WRITE : 0) | (p[2] == 'x' ? PROT_EXEC : 0);
        for (; it != wanted.end() && it->first < b; ++it) it->second = prot;
    }
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
    // Read-only pages too: a generated patch's fields (graft_reloc) may be in its read-only data
    // (an exception table naming a type of the target), written before anything reads them.
    for (auto &[page, prot] : prots) {
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
