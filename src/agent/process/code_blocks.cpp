#include "agent/process/code_blocks.hpp"

#include "agent/proc/mappings.hpp"
#include "agent/process/code_writer.hpp"
#include "arch/x86_64/relocate.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

namespace graft {
namespace {

// The reach every block keeps from the code it serves: a rel32 reaches +-2 GiB; the margin
// leaves room for the object's own size (its rip-relative data may sit at its other end).
constexpr uintptr_t kReach = uintptr_t{7} << 28;  // 1.75 GiB
// A chunk is kChunk bytes of code and, right after them, kChunk bytes of their data (the slot of
// the block at code offset o is at data offset o).
constexpr size_t kChunk = arch::kBlockSlotDistance;

struct Chunk {
    uintptr_t base;
    size_t used;
};
// Core mutex, like every caller.
auto &g_chunks = *new std::vector<Chunk>;

bool near_enough(uintptr_t a, uintptr_t b) {
    return (a > b ? a - b : b - a) < kReach;
}

// A fresh chunk in a gap of the address space near `near`: the gap nearest to it, below the
// lowest mapping around it or above.
uintptr_t map_chunk(uintptr_t near, std::string *why) {
    auto maps = process_mappings();
    if (maps.empty()) {
        *why = "/proc/self/maps cannot be read";
        return 0;
    }
    const uintptr_t pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    std::vector<uintptr_t> candidates;
    uintptr_t prev_end = pg * 16;  // never the zero page's neighbourhood
    for (auto &[a, b] : maps) {
        if (a >= prev_end + 2 * kChunk) {
            // The gap [prev_end, a): its two ends.
            candidates.push_back(a - 2 * kChunk);
            candidates.push_back(prev_end);
        }
        prev_end = b > prev_end ? b : prev_end;
    }
    uintptr_t best = 0, best_d = ~uintptr_t{0};
    for (uintptr_t c : candidates) {
        uintptr_t d = c > near ? c - near : near - c;
        if (near_enough(c, near) && near_enough(c + 2 * kChunk, near) && d < best_d) {
            best = c;
            best_d = d;
        }
    }
    if (!best) {
        *why = "no free address space within a 32-bit offset of the function for graft's relocation block";
        return 0;
    }
    void *p = mmap(reinterpret_cast<void *>(best), 2 * kChunk, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED || reinterpret_cast<uintptr_t>(p) != best) {
        if (p != MAP_FAILED) munmap(p, 2 * kChunk);
        *why = std::string("cannot map graft's relocation blocks near the function: ") + std::strerror(errno);
        return 0;
    }
    std::memset(p, arch::kBreakpoint, kChunk);  // unreachable bytes trap
    std::string exec_why;
    if (!make_executable(p, kChunk, &exec_why)) {
        munmap(p, 2 * kChunk);
        *why = "cannot make graft's relocation blocks executable: " + exec_why;
        return 0;
    }
    g_chunks.push_back({best, 0});
    return best;
}

}  // namespace

uintptr_t alloc_code_block(uintptr_t near, size_t size, std::string *why) {
    size = (size + 63) & ~size_t{63};  // a cache line each: no two blocks share one
    for (auto &c : g_chunks)
        if (c.used + size <= kChunk && near_enough(c.base, near) && near_enough(c.base + kChunk, near)) {
            uintptr_t a = c.base + c.used;
            c.used += size;
            return a;
        }
    uintptr_t base = map_chunk(near, why);
    if (!base) return 0;
    g_chunks.back().used = size;
    return base;
}

}  // namespace graft
