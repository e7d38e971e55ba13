#include "agent/process/object_events.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/object_binding.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/process/fini_watch.hpp"
#include "agent/process/loader_watch.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/log.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "arch/arch.hpp"

namespace graft {
namespace {

// Live objects by load bias (the kernel's mod->klp_alive): core mutex.
auto &g_live = *new std::map<uintptr_t, LoadedObject>;  // never destroyed: events come at exit
bool g_watched = false;                                 // written once, at start-up
bool g_loader_hook = false;  // the loader's debugger hook watches, not the audit module (start-up)
// The dynamic sections of live objects seen through their link_map (the loader hook's events):
// fini_watch finds those of other namespaces only here (core mutex).
auto &g_dynamic = *new std::map<uintptr_t, void *>;
// Objects whose coming a patch refused, by load bias, while they stay mapped: the loader hook
// must not take them for new at its next look (core mutex).
auto &g_refused = *new std::set<uintptr_t>;
std::atomic<bool> g_stopped{false};

// Gates merged from gcc's `90 90` while the program's threads ran (attach): a thread may still
// stand on a second byte, and would execute the open gate's displacement there (with endbr64 it is
// `f4`, hlt: a crash). No thread can arrive there any more (the merge made it the middle of one
// instruction), so one sighting of each thread elsewhere before the first opening is enough
// (gate_needs_probe). Core mutex.
auto &g_gates_to_probe = *new std::set<uintptr_t>;

void forget_gates(const LoadedObject &o) {
    g_gates_to_probe.erase(g_gates_to_probe.lower_bound(o.text_lo), g_gates_to_probe.lower_bound(o.text_hi));
}

// The live object at `it` is going: out of the live set, then every patch reverted from it.
void going(std::map<uintptr_t, LoadedObject>::iterator it) {
    const LoadedObject lo = it->second;
    g_live.erase(it);
    g_dynamic.erase(lo.base);
    forget_gates(lo);
    livepatch_object_going(lo);
}

// The object coming right now in this thread (the loading thread, core mutex held), or 0.
uintptr_t g_coming_base = 0;

// The object coming or going right now, and which (core mutex).
std::string &g_state_object = *new std::string;
enum graft_object_state g_state = GRAFT_OBJECT_LIVE;

// gcc emits the 2-byte gate of a patchable entry as two 1-byte nops, and the jump layout's 5 bytes
// as five: a thread could stop between them. Each gate becomes one 2-byte nop (66 90), each run of
// five one 5-byte nop; then no thread can ever stand inside, and changing the entry later needs no
// wait. The entries are listed by the linker in __patchable_function_entries; the file holds their
// link-time addresses.
// `alone`: no thread can be running the object's code (the agent's start under `graft run`; an
// object coming, before any of its code has run). A gate's merge is safe either way (a thread on
// the second `90` of `90 90` finds the same byte there after it); the jump layout's is not (a
// thread on its second nop would find the middle of `0f 1f 44 00 00`): without `alone` those five
// nops stay, and their rewrite waits for threads (design.md §2.7).
// `known`: the entries, read with the object's name (loaded_objects()); else read here.
void merge_entry_nops(const LoadedObject &o, bool alone, const std::vector<uintptr_t> *known = nullptr) {
    if (o.path.empty() || o.path[0] != '/') return;
    // The checked reader (symbols.hpp): the file is read, never mapped, so an object file
    // truncated on disk cannot fault here, and a malformed one yields no entries.
    std::string err;
    std::vector<uintptr_t> read;
    if (!known && !patchable_entries_of(o.path, &read, &err)) return;
    const std::vector<uintptr_t> &entries = known ? *known : read;
    std::vector<CodeWrite> writes;
    for (uintptr_t entry : entries) {
        // The jump layout (`graft flags target --entry jump`): gcc's five 1-byte nops become
        // one 5-byte nop, the entry then costs one nop, and its later rewrite need not wait for
        // threads (no instruction starts inside it).
        uintptr_t at = o.base + entry;
        if (alone && at >= o.text_lo && at + arch::kJumpSize < o.text_hi &&
            arch::is_single_nop_run(reinterpret_cast<const uint8_t *>(at), arch::kJumpSize)) {
            CodeWrite w{at, arch::kJumpSize, {}};
            arch::nop5_bytes(w.bytes);
            writes.push_back(w);
            continue;
        }
        uintptr_t func = o.base + entry + arch::kPrefixSize;
        if (func - arch::kPrefixSize < o.text_lo || func + 6 > o.text_hi) continue;
        arch::EntryLayout lay;
        std::string why;
        if (!arch::decode_entry(func, &lay, &why) || !lay.single_byte_nops) continue;
        CodeWrite w{lay.gate, 2, {}};
        uint16_t v = arch::gate_closed_word();
        std::memcpy(w.bytes, &v, 2);
        writes.push_back(w);
        if (!alone) g_gates_to_probe.insert(lay.gate);
    }
    std::string why;
    if (!writes.empty() && !write_code(writes, &why))
        log_line("graft: cannot prepare the entries of object '" + o.name + "': " + why);
}

using AuditHandler = void (*)(int, struct link_map *, Lmid_t);

void on_object_event(int event, struct link_map *map, Lmid_t) {
    if (g_stopped.load(std::memory_order_acquire) || !map) return;
    int saved = errno;
    try {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        if (event == 0) {
            LoadedObject lo;
            std::vector<uintptr_t> entries;
            const bool listed = loaded_object_at(map->l_addr, &lo, &entries);
            const bool found = listed || loaded_object_from_file(map->l_addr, map->l_name, &lo);
            if (found && !lo.path.empty() && lo.path[0] == '/') {
                merge_entry_nops(lo, true, listed ? &entries : nullptr);
                arch::sync_cores();
                g_live[lo.base] = lo;
                if (g_loader_hook) g_dynamic[lo.base] = map->l_ld;
                g_coming_base = lo.base;
                const bool applied = livepatch_object_coming(lo);
                g_coming_base = 0;
                if (!applied) {  // refused: not live
                    g_live.erase(lo.base);
                    g_dynamic.erase(lo.base);
                    g_refused.insert(lo.base);
                }
            }
        } else {
            auto it = g_live.find(map->l_addr);
            if (it != g_live.end()) {
                going(it);
            } else {
                // Its extent is unknown (an object never declared live): drop every row.
                frame_rules_forget(0, UINTPTR_MAX);
            }
        }
    } catch (...) {
        core_refuse("an object event failed (out of memory?)");
    }
    errno = saved;
}

// The audit module lives in another link-map namespace: find it through the debugger's
// interface (one r_debug per namespace, chained since glibc 2.35) and hand it our handler.
bool attach_audit_module() {
    auto *r = reinterpret_cast<r_debug_extended *>(&_r_debug);
    for (; r; r = r->base.r_version >= 2 ? r->r_next : nullptr) {
        for (link_map *m = r->base.r_map; m; m = m->l_next) {
            const char *n = m->l_name;
            if (!n) continue;
            const char *b = std::strrchr(n, '/');
            if (std::strcmp(b ? b + 1 : n, "libgraft-audit.so") != 0) continue;
            auto attach = reinterpret_cast<void (*)(AuditHandler)>(dlsym(m, "graft_audit_attach"));
            if (!attach) return false;
            attach(on_object_event);
            return true;
        }
    }
    return false;
}

}  // namespace

void object_events_init(bool alone) {
    auto adopt_mapped = [alone] {
        std::vector<std::vector<uintptr_t>> entries;  // one read of each file: name and entries
        const std::vector<LoadedObject> objects = loaded_objects(&entries);
        for (size_t i = 0; i < objects.size(); i++) {
            const LoadedObject &o = objects[i];
            if (g_live.count(o.base)) continue;  // the loader hook took it for new already
            merge_entry_nops(o, alone, &entries[i]);
            g_live[o.base] = o;
        }
    };
    if (attach_audit_module()) {
        // Under `graft run`: the audit module reports an unload before it unmaps, under the core
        // mutex, so objects listed under it stay mapped.
        g_watched = true;
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        adopt_mapped();
        return;
    }
    // No audit module (a process graft attached to, or run without it): the loader's debugger
    // hook. It goes in first, so that the objects are read at a moment no thread can unmap one
    // (attached, the program's threads may dlopen and dlclose all along): the core mutex held
    // while no load or unload is in flight (loader_quiet).
    std::string why;
    g_loader_hook = true;  // before the hook can report anything
    if (loader_watch_start(&why)) {
        g_watched = true;
        for (int waited_ms = 0;; waited_ms++) {
            {
                std::lock_guard<std::recursive_mutex> g(g_core_mutex);
                const bool quiet = loader_quiet();
                if (quiet || waited_ms == 5000) {
                    if (!quiet)
                        log_line(
                            "graft: the dynamic loader was never idle for 5 s: the loaded objects are "
                            "read while it loads or unloads");
                    adopt_mapped();
                    loader_adopt_all();  // other namespaces' objects too: live, not coming
                    return;
                }
            }
            usleep(1000);
        }
    }
    g_loader_hook = false;
    log_line("graft: objects loaded from now on will not be patched as they load: " + why);
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    adopt_mapped();  // nothing tells when an object goes: as it always was without a watch
}

void object_adopt(struct link_map *map) {
    LoadedObject lo;
    if (g_live.count(map->l_addr) || !loaded_object_from_file(map->l_addr, map->l_name, &lo)) return;
    if (!lo.path.empty() && lo.path[0] == '/') {
        g_live[lo.base] = lo;
        g_dynamic[lo.base] = map->l_ld;
    }
}

bool object_is_live(uintptr_t base) {
    return g_live.count(base) != 0;
}

void object_coming(struct link_map *map) {
    if (!g_refused.count(map->l_addr)) on_object_event(0, map, 0);
}

void objects_present(const std::set<uintptr_t> &bases) {
    for (auto it = g_refused.begin(); it != g_refused.end();)
        it = bases.count(*it) ? std::next(it) : g_refused.erase(it);
    std::vector<uintptr_t> gone;
    for (auto &[base, o] : g_live)
        if (!o.is_main && !bases.count(base)) gone.push_back(base);
    // Its code is unmapped already (its destructors were not seen: fini_watch.hpp):
    // livepatch_object_going() writes none of it.
    for (uintptr_t base : gone) going(g_live.find(base));
    // A watched object's slot serves another only once the object is unmapped (one reported
    // going at RT_DELETE is still mapped until now; one refused at its coming was never live).
    for (uintptr_t base : fini_watch_bases())
        if (!bases.count(base)) fini_watch_forget(base);
}

void objects_finished() {
    // In the thread that reached RT_DELETE, ld.so has run destructors only for the objects this
    // dlclose removes (an exit's _dl_fini runs them on its own thread, and no RT_DELETE follows
    // there; marks left by a dlclose that failed before its RT_DELETE were dropped at this
    // thread's next loader event): every watched object whose DT_FINI this thread ran is going,
    // and is still mapped.
    for (uintptr_t base : fini_watch_finished())
        if (auto it = g_live.find(base); it != g_live.end()) going(it);
    fini_watch_clear_marks();
}

void object_bound(const LoadedObject &lo) {
    if (!g_loader_hook || lo.is_main) return;
    auto d = g_dynamic.find(lo.base);
    std::string why;
    // Else its GOING comes after the unmap, as for any object not watched.
    fini_watch(lo.base, d == g_dynamic.end() ? nullptr : d->second, lo.base == g_coming_base, &why);
}

bool objects_watched() {
    return g_watched;
}

bool gate_needs_probe(uintptr_t gate) {
    return g_gates_to_probe.count(gate) != 0;
}

void gate_probed(uintptr_t gate) {
    g_gates_to_probe.erase(gate);
}

void object_events_stop() {
    g_stopped.store(true, std::memory_order_release);
}

bool find_live_object(const char *name, LoadedObject *out) {
    if (!g_watched) return find_loaded_object(name, out);
    for (auto &[base, o] : g_live) {
        if ((!name && o.is_main) || (name && !o.is_main && o.name == name)) {
            *out = o;
            return true;
        }
    }
    return false;
}

enum graft_object_state object_state_of(const graft_object *desc) {
    if (!desc || g_state == GRAFT_OBJECT_LIVE) return GRAFT_OBJECT_LIVE;
    return object_display_name(desc->name) == g_state_object ? g_state : GRAFT_OBJECT_LIVE;
}

void set_object_state_name(const std::string &object, enum graft_object_state st) {
    g_state_object = object;
    g_state = st;
}

}  // namespace graft
