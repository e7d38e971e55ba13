#include "agent/threads/birth_redirect.hpp"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "agent/threads/thread_state.hpp"

// thread_birth.cpp's pthread_create, by its hidden name: a direct address, not the GOT's.
extern "C" int graft_thread_birth_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

namespace graft {
namespace {

// Set once by the first redirect (the agent's constructor); read by later transitions.
std::atomic<bool> g_redirected{false};

struct Walk {
    uintptr_t wrapper;    // thread_birth.cpp's pthread_create
    uintptr_t real;       // what the program's own lookup gives: the C library's (or a preloaded tool's)
    uintptr_t libc_base;  // load bias of the object that defines `real`: never rewritten
    uintptr_t self_base;  // the agent's own load bias
    uintptr_t page;
    bool relro_too;  // no load can be in flight: slots in RELRO pages may be rewritten too
    BirthRedirects r;
};

// The dynamic section's addresses: ld.so relocates most objects' entries in place, not the vDSO's
// or a read-only dynamic section's; an entry below the load bias is still an offset.
uintptr_t dyn_addr(uintptr_t v, uintptr_t base) {
    return v < base ? v + base : v;
}

struct Dynamic {
    const ElfW(Rela) *jmprel = nullptr;
    size_t jmprel_size = 0;
    const ElfW(Rela) *rela = nullptr;
    size_t rela_size = 0;
    const ElfW(Sym) *symtab = nullptr;
    const char *strtab = nullptr;
    size_t strsz = 0;
    bool rela_plt = true;
};

void redirect_in(Walk &w, const dl_phdr_info *info, const Dynamic &d, const ElfW(Rela) * rel, size_t size) {
    const uintptr_t base = info->dlpi_addr;
    for (size_t i = 0; rel && i < size / sizeof(ElfW(Rela)); i++) {
        const auto type = ELF64_R_TYPE(rel[i].r_info);
        if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
        const auto sym = ELF64_R_SYM(rel[i].r_info);
        if (sym == 0) continue;
        const ElfW(Word) name = d.symtab[sym].st_name;
        if (name >= d.strsz || std::strcmp(d.strtab + name, "pthread_create") != 0) continue;
        const uintptr_t slot = base + rel[i].r_offset;
        // Which segment holds the slot, and whether ld.so made its page read-only once bound
        // (_dl_protect_relro protects whole pages only: a slot on the segment's last, partial
        // page stays writable).
        bool writable = false, relro = false, stub_here = false;
        const uintptr_t value = __atomic_load_n(reinterpret_cast<uintptr_t *>(slot), __ATOMIC_RELAXED);
        const uintptr_t page_mask = ~(w.page - 1);
        for (int k = 0; k < info->dlpi_phnum; k++) {
            const ElfW(Phdr) &ph = info->dlpi_phdr[k];
            const uintptr_t lo = base + ph.p_vaddr, hi = lo + ph.p_memsz;
            if (ph.p_type == PT_GNU_RELRO && slot >= (lo & page_mask) && slot < (hi & page_mask))
                relro = true;
            if (ph.p_type != PT_LOAD) continue;
            if (slot >= lo && slot + 8 <= hi && (ph.p_flags & PF_W)) writable = true;
            if ((ph.p_flags & PF_X) && value >= lo && value < hi) stub_here = true;  // lazy: its PLT
        }
        if (!writable || (relro && !w.relro_too)) {
            w.r.read_only++;
            continue;
        }
        if (value == w.wrapper) {
            w.r.redirected++;
            continue;
        }
        if (value != w.real && !(stub_here && !relro)) {
            w.r.foreign++;
            continue;
        }
        // A read-only page is made writable for the one store: only while no load is in flight
        // (relro_too), since the loader may be writing and then protecting a page of an object it
        // is relocating. Readers of the slot (callers of pthread_create) never fault: the page
        // stays readable throughout.
        void *pg = reinterpret_cast<void *>(slot & page_mask);
        if (relro && mprotect(pg, w.page, PROT_READ | PROT_WRITE) != 0) {
            w.r.read_only++;
            continue;
        }
        // A CAS: ld.so's lazy binding may resolve the slot at the same moment; if it wins, the
        // slot keeps the C library's function and a later transition redirects it.
        uintptr_t expected = value;
        if (__atomic_compare_exchange_n(reinterpret_cast<uintptr_t *>(slot), &expected, w.wrapper, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            w.r.redirected++;
        if (relro && mprotect(pg, w.page, PROT_READ) != 0) w.r.left_writable++;
    }
}

int each_object(dl_phdr_info *info, size_t, void *arg) {
    auto &w = *static_cast<Walk *>(arg);
    const uintptr_t base = info->dlpi_addr;
    if (base == w.libc_base || base == w.self_base) return 0;
    const ElfW(Dyn) *dyn = nullptr;
    for (int k = 0; k < info->dlpi_phnum; k++)
        if (info->dlpi_phdr[k].p_type == PT_DYNAMIC)
            dyn = reinterpret_cast<const ElfW(Dyn) *>(base + info->dlpi_phdr[k].p_vaddr);
    if (!dyn) return 0;
    Dynamic d;
    for (const ElfW(Dyn) *e = dyn; e->d_tag != DT_NULL; e++) {
        switch (e->d_tag) {
            case DT_JMPREL:
                d.jmprel = reinterpret_cast<const ElfW(Rela) *>(dyn_addr(e->d_un.d_ptr, base));
                break;
            case DT_PLTRELSZ:
                d.jmprel_size = e->d_un.d_val;
                break;
            case DT_PLTREL:
                d.rela_plt = e->d_un.d_val == DT_RELA;
                break;
            case DT_RELA:
                d.rela = reinterpret_cast<const ElfW(Rela) *>(dyn_addr(e->d_un.d_ptr, base));
                break;
            case DT_RELASZ:
                d.rela_size = e->d_un.d_val;
                break;
            case DT_SYMTAB:
                d.symtab = reinterpret_cast<const ElfW(Sym) *>(dyn_addr(e->d_un.d_ptr, base));
                break;
            case DT_STRTAB:
                d.strtab = reinterpret_cast<const char *>(dyn_addr(e->d_un.d_ptr, base));
                break;
            case DT_STRSZ:
                d.strsz = e->d_un.d_val;
                break;
            default:
                break;
        }
    }
    if (!d.symtab || !d.strtab || !d.rela_plt) return 0;
    redirect_in(w, info, d, d.jmprel, d.jmprel_size);
    redirect_in(w, info, d, d.rela, d.rela_size);  // GLOB_DAT: -fno-plt calls, taken addresses
    return 0;
}

uintptr_t load_bias_of(const void *addr) {
    Dl_info info{};
    link_map *lm = nullptr;
    if (!dladdr1(addr, &info, reinterpret_cast<void **>(&lm), RTLD_DL_LINKMAP) || !lm) return ~uintptr_t{0};
    return lm->l_addr;
}

}  // namespace

BirthRedirects redirect_thread_births(bool loader_locked) {
    // Looked up once, by the first call (the agent's constructor, inside dlopen): dlsym and dladdr
    // take the loader's lock, which later calls, under the core mutex, must not (lock_order.hpp).
    static Walk first = [] {
        Walk w{reinterpret_cast<uintptr_t>(&graft_thread_birth_create),
               0,
               ~uintptr_t{0},
               ~uintptr_t{0},
               static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)),
               false,
               {}};
        if (void *real = dlsym(RTLD_DEFAULT, "pthread_create")) {
            w.real = reinterpret_cast<uintptr_t>(real);
            w.libc_base = load_bias_of(real);
            w.self_base = load_bias_of(reinterpret_cast<const void *>(&graft_thread_birth_create));
        }
        return w;
    }();
    // No C library function, or the agent's own is the program's (`graft run`): nothing to do.
    if (!first.real || first.real == first.wrapper) return {};
    // Before any slot leads to the wrapper, the wrapper must lead where the slots led.
    set_real_thread_create(reinterpret_cast<void *>(first.real));
    Walk w = first;
    w.relro_too = loader_locked;
    dl_iterate_phdr(each_object, &w);
    g_redirected.store(true, std::memory_order_relaxed);
    return w.r;
}

bool thread_births_redirected() {
    return g_redirected.load(std::memory_order_relaxed);
}

}  // namespace graft
