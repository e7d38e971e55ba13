// The stack checks' shared ground (klp_check_stack's): the functions whose frames end a
// thread's stack, the objects a signal may not interrupt reliably, the forbidden-range lookup, and
// the worker's start-up for both walkers. The walks themselves: own_walk.cpp (a thread checking
// itself) and blocked_walk.cpp (the worker checking a thread blocked in a system call).
#include "agent/unwind/stack_check.hpp"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <libelf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unwind.h>

#include <atomic>
#include <cstring>
#include <exception>

#include "agent/unwind/walk_common.hpp"
#include "arch/arch.hpp"

extern "C" {
// libgcc: FDE lookup for a pc (uses _dl_find_object; lock-free unless frames were registered
// by hand with __register_frame).
struct dwarf_eh_bases {
    void *tbase;
    void *dbase;
    void *func;
};
const void *_Unwind_Find_FDE(void *pc, struct dwarf_eh_bases *bases);
extern char __start_graft_select_text[] __attribute__((weak));
extern char __stop_graft_select_text[] __attribute__((weak));
}

namespace graft {

// Functions whose CFI ends the stack (rip undefined): _start of the executable, the clone
// helpers that start threads. Written once by the worker before any check runs.
std::atomic<uintptr_t> g_roots[4];
std::atomic<link_map *> g_self_map{nullptr};

uintptr_t fde_func(uintptr_t pc) {
    dwarf_eh_bases b{};
    if (!_Unwind_Find_FDE(reinterpret_cast<void *>(pc), &b)) return 0;
    return reinterpret_cast<uintptr_t>(b.func);
}

bool fde_range(uintptr_t pc, uintptr_t *lo, uintptr_t *hi) {
    dwarf_eh_bases b{};
    const auto *fde = static_cast<const unsigned char *>(_Unwind_Find_FDE(reinterpret_cast<void *>(pc), &b));
    if (!fde) return false;
    // length (4), CIE pointer (4), pc_begin, pc_range. The encoding is the CIE's; accept only the
    // one every x86-64 toolchain emits (pc-relative signed 4 bytes), recognised by pc_begin
    // decoding to the function the unwinder itself found.
    uint32_t length;
    int32_t begin;
    uint32_t range;
    std::memcpy(&length, fde, 4);
    if (length == 0xffffffffu || length < 16) return false;
    std::memcpy(&begin, fde + 8, 4);
    std::memcpy(&range, fde + 12, 4);
    const uintptr_t start =
        reinterpret_cast<uintptr_t>(fde + 8) + static_cast<uintptr_t>(static_cast<int64_t>(begin));
    if (start != reinterpret_cast<uintptr_t>(b.func) || pc < start || pc - start >= range) return false;
    *lo = start;
    *hi = start + range;
    return true;
}

bool is_root(uintptr_t pc) {
    uintptr_t f = fde_func(pc);
    if (!f) return false;
    for (auto &r : g_roots)
        if (r.load(std::memory_order_acquire) == f) return true;
    return false;
}

bool in_graft_hot_code(uintptr_t pc) {
    auto p = reinterpret_cast<char *>(pc);
    if (arch::in_trampoline(pc)) return true;
    return __start_graft_select_text && p >= __start_graft_select_text && p < __stop_graft_select_text;
}

const char *find_forbidden(uintptr_t pc, const ForbiddenTable *t) {
    if (!t) return nullptr;
    for (size_t i = 0; i < t->count; i++)
        if (pc >= t->ranges[i].lo && pc < t->ranges[i].hi) return t->ranges[i].name;
    return nullptr;
}

// Objects whose code may be interrupted at points where its CFI does not describe the stack
// (the unwinder installing a context for a C++ exception, the dynamic loader): a signal that
// lands there is answered "unreliable" before any walk starts.
std::atomic<link_map *> g_unwinder_map{nullptr}, g_loader_map{nullptr};

void stack_check_init_worker() {
    // The worker uses libelf, libdw and libdwfl with the core mutex held. Their error codes are
    // thread-local; a thread's first access to a module's thread-local block may allocate it
    // and take the dynamic linker's lock (tls_get_addr_tail), while a loading thread holds that
    // lock and waits for the core mutex (object_events.hpp): a deadlock, seen with the agent's
    // sanitizer build. Touch them here, before the worker ever takes the core mutex.
    (void)elf_errno();
    (void)dwarf_errno();
    (void)dwfl_errno();
    (void)std::uncaught_exceptions();  // libstdc++'s exception globals, for the same reason
    dl_find_object fo{};
    if (_dl_find_object(reinterpret_cast<void *>(&stack_check_init_worker), &fo) == 0)
        g_self_map.store(fo.dlfo_link_map, std::memory_order_release);
    if (_dl_find_object(reinterpret_cast<void *>(&_Unwind_RaiseException), &fo) == 0)
        g_unwinder_map.store(fo.dlfo_link_map, std::memory_order_release);
    // The dynamic loader: the object mapped at AT_BASE (_dl_find_object itself lives in libc).
    if (unsigned long base = getauxval(AT_BASE);
        base && _dl_find_object(reinterpret_cast<void *>(base), &fo) == 0)
        g_loader_map.store(fo.dlfo_link_map, std::memory_order_release);
    own_walk_init();
    // This runs on a pthread: the outermost frame of its stack is the thread-start helper.
    OwnWalk w;
    _Unwind_Backtrace(collect, &w);
    if (w.n > 0) g_roots[0].store(fde_func(w.pc[w.n - 1] & ~(1ull << 63)));
    g_roots[1].store(fde_func(getauxval(AT_ENTRY)));
    if (void *c = dlsym(RTLD_DEFAULT, "clone")) g_roots[2].store(fde_func(reinterpret_cast<uintptr_t>(c)));
}

}  // namespace graft
