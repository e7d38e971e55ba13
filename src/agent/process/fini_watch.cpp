#include "agent/process/fini_watch.hpp"

#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <map>
#include <utility>

#include "agent/proc/mappings.hpp"

namespace graft {
namespace {

// One watched object. `base` and `original` are written under the core mutex before the slot's
// function is published in the object's DT_FINI (release store in store_entry, whose pair is
// ld.so's read of DT_FINI before the call: the call depends on the address read). `ran_by` is the
// thread that ran the object's DT_FINI: only that thread's next RT_DELETE takes it for going
// (fini_watch_finished); a mark of another thread (an exit's _dl_fini, a fork's parent) never
// counts there. Constant-initialised, never destroyed: ld.so may call a slot's function at exit
// after the agent's own destructors ran.
struct Slot {
    std::atomic<uintptr_t> base{0};      // 0: free
    std::atomic<uintptr_t> original{0};  // the object's own DT_FINI function (absolute)
    std::atomic<pid_t> ran_by{0};
};

constexpr size_t kSlots = 128;
Slot g_slots[kSlots];

// A slot's function: the object's `_fini` first (it may run legacy .fini code), then the mark,
// so that the object counts as finished only once every destructor of it has returned.
template <size_t I>
void fini_thunk() {
    const uintptr_t orig = g_slots[I].original.load(std::memory_order_relaxed);
    if (orig) reinterpret_cast<void (*)()>(orig)();
    g_slots[I].ran_by.store(static_cast<pid_t>(syscall(SYS_gettid)), std::memory_order_relaxed);
}

template <size_t... I>
constexpr std::array<void (*)(), sizeof...(I)> thunks_for(std::index_sequence<I...>) {
    return {&fini_thunk<I>...};
}
constexpr auto kThunks = thunks_for(std::make_index_sequence<kSlots>{});

struct Found {
    uintptr_t base;
    ElfW(Dyn) *dynamic = nullptr;
};

int find_dynamic(dl_phdr_info *info, size_t, void *arg) {
    auto &f = *static_cast<Found *>(arg);
    if (info->dlpi_addr != f.base) return 0;
    for (int k = 0; k < info->dlpi_phnum; k++)
        if (info->dlpi_phdr[k].p_type == PT_DYNAMIC)
            f.dynamic = reinterpret_cast<ElfW(Dyn) *>(f.base + info->dlpi_phdr[k].p_vaddr);
    return 1;
}

// Stores `value` into a DT_FINI entry's d_ptr with one 8-byte store (a dlclose on another thread
// may be reading it). A page that is read-only (RELRO, once ld.so relocated the object) is made
// writable for the store and given back its protection: ld.so changes it no more. A page that is
// still writable is written only by the loading thread itself, at the object's COMING
// (`loading`): elsewhere it may be an object that ld.so is relocating right now, which will make
// the page read-only at any moment, and a store after that would fault.
bool store_entry(ElfW(Dyn) * entry, uintptr_t value, bool loading, std::string *why) {
    const auto pg = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t page = reinterpret_cast<uintptr_t>(&entry->d_un.d_ptr) & ~(pg - 1);
    std::map<uintptr_t, int> pages{{page, 0}};
    if (!page_protections(&pages)) {
        *why = "the protection of its dynamic section cannot be read";
        return false;
    }
    const int prot = pages[page];
    if (prot & PROT_EXEC) {
        *why = "its dynamic section is in executable memory";
        return false;
    }
    if ((prot & PROT_WRITE) && !loading) {
        *why = "its dynamic section is still writable (the loader may be relocating it)";
        return false;
    }
    void *p = reinterpret_cast<void *>(page);
    if (!(prot & PROT_WRITE) && mprotect(p, pg, prot | PROT_WRITE) != 0) {
        *why = "its dynamic section cannot be made writable";
        return false;
    }
    // Release: the slot's fields are set before ld.so can call through the new value.
    __atomic_store_n(&entry->d_un.d_ptr, value, __ATOMIC_RELEASE);
    // If this fails the page stays writable: the object works as before, its RELRO is weaker.
    if (!(prot & PROT_WRITE)) mprotect(p, pg, prot);
    return true;
}

}  // namespace

bool fini_watch(uintptr_t base, void *dynamic, bool loading, std::string *why) {
    Slot *free_slot = nullptr;
    size_t index = 0;
    for (size_t i = 0; i < kSlots; i++) {
        const uintptr_t b = g_slots[i].base.load(std::memory_order_relaxed);
        if (b == base) return true;
        if (!b && !free_slot) free_slot = &g_slots[i], index = i;
    }
    auto *dyn = static_cast<ElfW(Dyn) *>(dynamic);
    if (!dyn) {
        Found f{base};
        dl_iterate_phdr(find_dynamic, &f);
        dyn = f.dynamic;
    }
    if (!dyn) {
        *why = "its dynamic section is not known to the agent";
        return false;
    }
    // ld.so read this array before it mapped the rest of the object: it ends with DT_NULL.
    ElfW(Dyn) *fini = nullptr;
    for (ElfW(Dyn) *e = dyn; e->d_tag != DT_NULL; e++)
        if (e->d_tag == DT_FINI) fini = e;
    if (!fini) {
        *why = "it has no DT_FINI function";
        return false;
    }
    if (!free_slot) {
        *why = "graft already watches " + std::to_string(kSlots) + " objects";
        return false;
    }
    const auto thunk = reinterpret_cast<uintptr_t>(kThunks[index]);
    const uintptr_t old = fini->d_un.d_ptr;
    for (auto fn : kThunks)  // never chained to a slot of graft's (a slot would call itself)
        if (base + old == reinterpret_cast<uintptr_t>(fn)) {
            *why = "its DT_FINI already points into graft";
            return false;
        }
    free_slot->original.store(base + old, std::memory_order_relaxed);
    free_slot->ran_by.store(0, std::memory_order_relaxed);
    free_slot->base.store(base, std::memory_order_relaxed);
    // d_ptr is relative to the load bias (ld.so calls l_addr + d_ptr): the difference wraps.
    if (!store_entry(fini, thunk - base, loading, why)) {
        free_slot->base.store(0, std::memory_order_relaxed);
        free_slot->original.store(0, std::memory_order_relaxed);
        return false;
    }
    return true;
}

std::vector<uintptr_t> fini_watch_finished() {
    const auto me = static_cast<pid_t>(syscall(SYS_gettid));
    std::vector<uintptr_t> out;
    for (Slot &s : g_slots) {
        const uintptr_t b = s.base.load(std::memory_order_relaxed);
        if (b && s.ran_by.load(std::memory_order_relaxed) == me) out.push_back(b);
    }
    return out;
}

void fini_watch_clear_marks(bool every_thread) {
    const auto me = static_cast<pid_t>(syscall(SYS_gettid));
    for (Slot &s : g_slots) {
        pid_t by = s.ran_by.load(std::memory_order_relaxed);
        if (by && (every_thread || by == me))
            s.ran_by.compare_exchange_strong(by, 0, std::memory_order_relaxed);
    }
}

std::vector<uintptr_t> fini_watch_bases() {
    std::vector<uintptr_t> out;
    for (Slot &s : g_slots)
        if (const uintptr_t b = s.base.load(std::memory_order_relaxed)) out.push_back(b);
    return out;
}

void fini_watch_forget(uintptr_t base) {
    for (Slot &s : g_slots) {
        if (s.base.load(std::memory_order_relaxed) != base) continue;
        // The entry is not put back: the object is unmapped.
        s.ran_by.store(0, std::memory_order_relaxed);
        s.base.store(0, std::memory_order_relaxed);
        // `original` stays until the slot serves another object, so that a call through a
        // stale entry still reaches a `_fini` (none can come: the object is gone).
    }
}

}  // namespace graft
