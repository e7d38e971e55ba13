#include "agent/process/loader_watch.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "agent/livepatch/core.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/process/elf_file.hpp"
#include "agent/process/fini_watch.hpp"
#include "agent/process/object_events.hpp"
#include "agent/process/symbols.hpp"
#include "arch/arch.hpp"

extern "C" __attribute__((visibility("hidden"))) void graft_loader_event();

namespace graft {
namespace {

// Set once the hook is written (release, loader_watch_start); until then the handler, which
// nothing can reach before, has nothing to compare with.
std::atomic<bool> g_hooked{false};

// Every namespace's r_debug: chained since glibc 2.35 (r_version 2).
template <class F>
void for_each_namespace(F f) {
    auto *r = reinterpret_cast<r_debug_extended *>(&_r_debug);
    for (; r; r = r->base.r_version >= 2 ? r->r_next : nullptr) f(&r->base);
}

// The thread that took the core mutex at an RT_DELETE and keeps it until its RT_CONSISTENT, or
// 0; written by that thread with the core mutex held.
pid_t g_unmapping = 0;

void on_loader_event() {
    int state = r_debug::RT_CONSISTENT;
    for_each_namespace([&](r_debug *r) {
        if (r->r_state != r_debug::RT_CONSISTENT) state = r->r_state;
    });
    const auto me = static_cast<pid_t>(syscall(SYS_gettid));
    if (state == r_debug::RT_DELETE) {
        // Nothing the loader publishes says which objects it is about to unmap (a raw link_map
        // is no dlsym handle: trying crashed ld.so). The objects graft watches (fini_watch.hpp)
        // say it themselves: their destructors ran. They go now, still mapped; for the others
        // no patch operation may run until they are gone and the next RT_CONSISTENT has dropped
        // them from the live set: this thread holds the core mutex across the unmapping (it holds
        // the loader's lock already, the order lock_order.hpp sets). ld.so reaches RT_CONSISTENT
        // on every path from here.
        if (g_unmapping != me) {
            g_core_mutex.lock();
            g_unmapping = me;
        }
        objects_finished();
        return;
    }
    // Marks of destructors this thread ran belong to an RT_DELETE only (fini_watch.hpp).
    fini_watch_clear_marks();
    if (state == r_debug::RT_ADD) return;  // nothing is mapped yet
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    struct Release {
        pid_t me;
        ~Release() {
            if (g_unmapping != me) return;
            g_unmapping = 0;
            g_core_mutex.unlock();  // the RT_DELETE's lock; the guard above still holds one
        }
    } release{me};
    std::set<uintptr_t> present;
    for_each_namespace([&](r_debug *r) {
        for (link_map *m = r->r_map; m; m = m->l_next) present.insert(m->l_addr);
    });
    objects_present(present);  // GOING first: a new object may be mapped where one was
    for_each_namespace([](r_debug *r) {
        for (link_map *m = r->r_map; m; m = m->l_next)
            if (m->l_name && m->l_name[0] == '/' && !object_is_live(m->l_addr)) object_coming(m);
    });
}

// ld.so's _dl_debug_state, checked: one `ret`, nothing else of ld.so in the 5 bytes the jump
// takes (alignment padding no code reaches), and no other tool's bytes.
bool find_debug_state(uintptr_t *at, std::string *why) {
    void *fn = dlsym(RTLD_DEFAULT, "_dl_debug_state");
    Dl_info info{};
    if (!fn || !dladdr(fn, &info) || !info.dli_fname) {
        *why = "the dynamic loader exports no _dl_debug_state";
        return false;
    }
    const auto addr = reinterpret_cast<uintptr_t>(fn);
    const auto *code = static_cast<const uint8_t *>(fn);
    if (!arch::is_bare_return(code)) {
        *why = std::string("_dl_debug_state in ") + info.dli_fname +
               " does not start with a bare return (a debugger's breakpoint, or another tool's hook)";
        return false;
    }
    // Its symbols are looked at once, not kept: a SymbolFile of ld.so would cost the attach a
    // millisecond for nothing else.
    const uintptr_t base = reinterpret_cast<uintptr_t>(info.dli_fbase);
    bool crowded = false;
    auto look = [&](const char *name, uint64_t value, uint64_t size, bool) {
        const uintptr_t a = base + value;
        const bool is_it = std::strcmp(name, "_dl_debug_state") == 0;
        if ((is_it && a == addr && size > 1) || (!is_it && a > addr && a < addr + arch::kJumpSize))
            crowded = true;
    };
    std::string err;
    const bool read = with_file(info.dli_fname, &err, [&](int fd) {
        try {
            ElfFile f;
            SymbolFile layout;
            return open_elf(fd, info.dli_fname, false, &f, &err) &&
                   read_elf(f, info.dli_fname, &layout, false, &err) && visit_symbols(f, look, &err);
        } catch (const std::bad_alloc &) {
            err = std::string("out of memory while reading ") + info.dli_fname;
            return false;
        }
    });
    if (!read) {
        *why = err;
        return false;
    }
    if (crowded) {
        *why = std::string("_dl_debug_state in ") + info.dli_fname +
               " is not the one-byte function graft expects (no room for a jump)";
        return false;
    }
    if ((addr & 15) + arch::kJumpSize > 16) {
        *why = "_dl_debug_state's padding ends before the jump would";
        return false;
    }
    *at = addr;
    return true;
}

// A page within a jump's reach of `near` holding a jump to the handler, for when the agent
// itself is out of reach (a process whose thread stacks fill gigabytes between them).
uintptr_t trampoline_near(uintptr_t near) {
    const long pg = sysconf(_SC_PAGESIZE);
    const uintptr_t step = 2u << 20, reach = 1536u << 20;
    for (uintptr_t d = step; d < reach; d += step)
        for (uintptr_t hint : {(near & ~(step - 1)) - d, (near & ~(step - 1)) + d}) {
            void *p = mmap(reinterpret_cast<void *>(hint), static_cast<size_t>(pg), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (p == MAP_FAILED) continue;
            if (p != reinterpret_cast<void *>(hint)) {  // a kernel that ignores the flag
                munmap(p, static_cast<size_t>(pg));
                continue;
            }
            arch::far_jump_bytes(reinterpret_cast<uintptr_t>(&graft_loader_event), static_cast<uint8_t *>(p));
            std::string ignored;
            if (make_executable(p, static_cast<size_t>(pg), &ignored)) return hint;
            munmap(p, static_cast<size_t>(pg));
            return 0;
        }
    return 0;
}

}  // namespace

bool loader_watch_start(std::string *why) {
    uintptr_t fn = 0;
    if (!find_debug_state(&fn, why)) return false;
    uint8_t jump[arch::kJumpSize];
    const auto handler = reinterpret_cast<uintptr_t>(&graft_loader_event);
    if (!arch::jump_bytes(fn, handler, jump)) {
        const uintptr_t tramp = trampoline_near(fn);
        if (!tramp || !arch::jump_bytes(fn, tramp, jump)) {
            *why = "no page within a jump's reach of the dynamic loader could be mapped";
            return false;
        }
    }
    g_hooked.store(true, std::memory_order_release);  // pairs with graft_loader_event()
    // The kernel's one-byte rule for code that may be running: first the bytes after the `ret`,
    // which no thread executes (padding), made visible to every core; then the first byte alone,
    // which a thread executes either whole as the old `ret` or whole as the new jump.
    CodeWrite tail{fn + 1, arch::kJumpSize - 1, {}};
    std::memcpy(tail.bytes, jump + 1, arch::kJumpSize - 1);
    if (!write_code({tail}, why) || !arch::sync_cores()) return false;
    CodeWrite head{fn, 1, {jump[0]}};
    if (!write_code({head}, why)) return false;
    arch::sync_cores();
    return true;
}

bool loader_quiet() {
    bool quiet = true;
    for_each_namespace([&](r_debug *r) {
        // Written by ld.so before it calls _dl_debug_state (which takes the core mutex, held
        // here, for RT_DELETE): a plain load, as a debugger reads it.
        if (__atomic_load_n(&r->r_state, __ATOMIC_RELAXED) != r_debug::RT_CONSISTENT) quiet = false;
    });
    return quiet;
}

void loader_adopt_all() {
    for_each_namespace([](r_debug *r) {
        for (link_map *m = r->r_map; m; m = m->l_next)
            if (m->l_name && m->l_name[0] == '/') object_adopt(m);
    });
}

}  // namespace graft

// The jump's target: a plain function returning to _dl_debug_state's caller, as the `ret` did.
// It runs in the thread that is loading or unloading, with the loader's lock held; it never lets
// an exception or errno change out.
extern "C" __attribute__((visibility("hidden"))) void graft_loader_event() {
    if (!graft::g_hooked.load(std::memory_order_acquire)) return;
    const int saved = errno;
    try {
        graft::on_loader_event();
    } catch (...) {
        graft::core_refuse("an object event failed (out of memory?)");
    }
    errno = saved;
}
