#include "arch/x86_64/entry.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

namespace graft::arch {

namespace {
constexpr uint8_t kNop = 0x90;
constexpr uint8_t kEndbr64[4] = {0xf3, 0x0f, 0x1e, 0xfa};
constexpr uint8_t kJmpIndirect[6] = {0xff, 0x25, 0xf2, 0xff, 0xff, 0xff};  // jmp *-14(%rip)
// Written by init_membarrier before the agent's first barrier, on the thread that issues them
// (the constructor's, under attach the worker; a fork child's only thread): no other reader.
bool g_sync_core = false;
int g_barrier_cmd = 0;  // the registered command membarrier_all() issues

int membarrier(int cmd) {
    return static_cast<int>(syscall(__NR_membarrier, cmd, 0, 0));
}
}  // namespace

bool decode_entry(uintptr_t func, EntryLayout *out, std::string *why) {
    EntryLayout e;
    e.func = func;
    e.prefix = func - kPrefixSize;
    e.slot = e.prefix;
    const auto *f = reinterpret_cast<const uint8_t *>(func);
    const auto *pre = reinterpret_cast<const uint8_t *>(e.prefix);
    e.gate = std::memcmp(f, kEndbr64, 4) == 0 ? func + 4 : func;
    e.body = e.gate + kGateSize;
    const auto *g = reinterpret_cast<const uint8_t *>(e.gate);
    if (e.slot % 8 != 0) {
        *why = "its patchable entry is not 16-byte aligned (build it with $(graft flags target))";
        return false;
    }
    bool pad_nops = true;
    for (int i = 0; i < kPrefixSize; i++) pad_nops = pad_nops && pre[i] == kNop;
    e.prefix_ours = std::memcmp(pre + 8, kJmpIndirect, 6) == 0;
    if (!pad_nops && !e.prefix_ours) {
        *why = "it has no patchable entry (build it with $(graft flags target))";
        return false;
    }
    if (g[0] == 0x66 && g[1] == kNop) {
        e.gate_open = false;
    } else if (g[0] == kNop && g[1] == kNop) {
        e.single_byte_nops = true;
    } else if (g[0] == 0xeb && e.prefix_ours &&
               static_cast<int8_t>(g[1]) == static_cast<int8_t>((func - 6) - (e.gate + 2))) {
        e.gate_open = true;
    } else {
        *why = "it has no patchable entry (build it with $(graft flags target))";
        return false;
    }
    *out = e;
    return true;
}

uint16_t gate_closed_word() {
    return 0x9066;
}  // little endian: 66 90

uint16_t gate_open_word(const EntryLayout &e) {
    auto rel = static_cast<int8_t>(static_cast<intptr_t>(e.func - 6) - static_cast<intptr_t>(e.gate + 2));
    return static_cast<uint16_t>(0xeb | (static_cast<uint16_t>(static_cast<uint8_t>(rel)) << 8));
}

void prefix_jump_bytes(uint8_t out[6]) {
    std::memcpy(out, kJmpIndirect, 6);
}

bool is_bare_return(const uint8_t *p) {
    return p[0] == 0xc3;
}

bool jump_bytes(uintptr_t from, uintptr_t to, uint8_t out[5]) {
    const auto rel = static_cast<int64_t>(to) - static_cast<int64_t>(from + kJumpSize);
    if (rel < INT32_MIN || rel > INT32_MAX) return false;
    const auto r32 = static_cast<int32_t>(rel);
    out[0] = 0xe9;
    std::memcpy(out + 1, &r32, 4);
    return true;
}

void far_jump_bytes(uintptr_t to, uint8_t out[14]) {
    static constexpr uint8_t kJmpRip[6] = {0xff, 0x25, 0, 0, 0, 0};  // jmp *0(%rip): the next 8 bytes
    std::memcpy(out, kJmpRip, 6);
    std::memcpy(out + 6, &to, 8);
}

bool is_single_nop_pair(const uint8_t *p) {
    return p[0] == kNop && p[1] == kNop;
}

bool is_single_nop_run(const uint8_t *p, int n) {
    for (int i = 0; i < n; i++)
        if (p[i] != kNop) return false;
    return p[n] != kNop;
}

void nop5_bytes(uint8_t out[5]) {
    // The 5-byte form Intel's optimisation manual recommends (nopl 0x0(%rax,%rax,1)).
    static constexpr uint8_t kNop5[5] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    std::memcpy(out, kNop5, 5);
}

bool init_membarrier(std::string *why) {
    int cmds = membarrier(MEMBARRIER_CMD_QUERY);
    if (cmds < 0 || !(cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) {
        *why = "the kernel lacks membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)";
        return false;
    }
    // One registration: the sync-core command orders memory as the plain one does and also
    // serialises every core, so membarrier_all() uses it too. In a process that already has
    // threads each registration waits for an RCU grace period (about 12 ms here): an attach pays
    // it once.
    if ((cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) &&
        membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE) == 0) {
        g_sync_core = true;
        g_barrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE;
        return true;
    }
    if (membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) {
        *why = std::string("membarrier registration failed: ") + std::strerror(errno);
        return false;
    }
    g_barrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
    return true;
}

bool sync_cores() {
    // Serialise this core too (the command does on kernels since 5.11; a serialising
    // instruction here costs nothing extra and covers older kernels).
    if (g_sync_core && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE) == 0) {
        unsigned eax = 0, ebx, ecx = 0, edx;
        __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx)::"memory");
        return true;
    }
    // Without SYNC_CORE: a plain expedited membarrier still interrupts every running thread,
    // and the return from that interrupt (iret) is serialising on x86.
    return g_barrier_cmd && membarrier(g_barrier_cmd) == 0;
}

void membarrier_all() {
    // Without membarrier (the agent refuses to start then) at least fence this thread; mfence
    // rather than std::atomic_thread_fence, which ThreadSanitizer builds reject.
    if (!g_barrier_cmd || membarrier(g_barrier_cmd) != 0) __asm__ volatile("mfence" ::: "memory");
}

}  // namespace graft::arch
