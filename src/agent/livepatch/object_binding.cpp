#include "agent/livepatch/object_binding.hpp"

#include <algorithm>
#include <cerrno>

#include "agent/livepatch/callbacks.hpp"
#include "agent/livepatch/core.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/process/object_events.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/log.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "arch/x86_64/relocate.hpp"

namespace graft {

namespace {

bool size_of_new_func(const Patch &p, void *fn, size_t *size) {
    const SymbolFile *syms = p.syms.get();  // of the bytes that were loaded (patch_file.hpp)
    if (!syms) return false;
    auto off = reinterpret_cast<uintptr_t>(fn) - p.load_bias;
    auto it = syms->funcs_by_addr.find(off);
    if (it == syms->funcs_by_addr.end()) return false;
    *size = syms->syms[it->second].size;
    return *size > 0;
}

// Forgets what binding resolved for the functions of `o` (a nop's "new" function included).
void unbind_funcs(Object *o) {
    for (auto &f : o->funcs) {
        f->old_addr = 0;
        f->old_size = 0;
        f->stack = nullptr;
        if (f->nop) {
            f->new_func = nullptr;
            f->new_size = 0;
        }
    }
}

}  // namespace

bool bind_object(Object *o, const LoadedObject &lo, std::string *why, int *err) {
    const Patch &p = *o->patch;
    if (err) *err = EINVAL;
    const std::string where = "patch '" + p.name + "', object '" + o->name + "'";
    auto fail_with = [&](const std::string &msg) {
        unbind_funcs(o);
        *why = where + ": " + msg;
        return false;
    };
    if (!o->expected_build_id.empty() && o->expected_build_id != lo.build_id)
        return fail_with("build-id mismatch: the process runs " +
                         (lo.build_id.empty() ? std::string("an object without build-id") : lo.build_id) +
                         ", the patch was built for " + o->expected_build_id);
    std::string e;
    for (auto &f : o->funcs) {
        Resolved r;
        if (!resolve_symbol(lo, f->old_name, f->old_sympos, true, &r, &e)) return fail_with(e);
        f->old_addr = r.addr;
        f->old_size = r.size;
        if (f->nop) {
            // A nop's "new" function is the original (klp_init_object_loaded): the stack check
            // of a reversed replace forbids it, the selector runs the body for it.
            f->new_func = reinterpret_cast<void *>(r.addr);
            f->new_size = r.size;
            continue;
        }
        if (!size_of_new_func(p, f->new_func, &f->new_size))
            return fail_with("cannot find the size of the new function for '" + f->old_name +
                             "' (is the patch stripped?)");
    }
    for (auto &f : o->funcs) {
        for (auto &g2 : o->funcs)
            if (g2.get() != f.get() && g2->old_addr == f->old_addr)
                return fail_with("function '" + f->old_name + "' is patched twice");
        // Whether the compiler gave it a patchable entry (the file lists it). Such an entry whose
        // bytes are not graft's belongs to another tool and is never rewritten over.
        std::string serr;
        auto syms = symbols_of(lo.path, &serr);
        uintptr_t pad = f->old_addr - lo.base - arch::kPrefixSize;
        bool compiler_entry =
            syms && std::binary_search(syms->patchable_entries.begin(), syms->patchable_entries.end(), pad);
        // Its .cold parts (gcc's split-off code, which jumps back into it): a rewrite of its entry
        // must see their branches too. Every symbol of that name: which one is this function's
        // cannot be told, and one that is not only costs a scan.
        std::vector<arch::CodeRange> cold;
        if (syms && !compiler_entry) {
            auto range = syms->by_name.equal_range(f->old_name + ".cold");
            for (auto it = range.first; it != range.second; ++it) {
                const Symbol &c = syms->syms[it->second];
                if (c.func && c.size) cold.push_back({c.value + lo.base, c.size});
            }
        }
        f->stack = stack_for(f->old_addr, f->old_size, compiler_entry, f->old_name, o->name, &e, cold);
        if (!f->stack) {
            // The compiler gave it an entry, and its bytes are not what graft expects: another
            // tool hooks this function (the kernel's ftrace conflict, -EBUSY). The entry stays
            // that tool's.
            if (compiler_entry && !find_stack(f->old_addr)) {
                if (err) *err = EBUSY;
                return fail_with(
                    "function '" + f->old_name +
                    "' cannot be patched: its patchable entry was changed by other code (another tool "
                    "hooks this function)");
            }
            return fail_with("function '" + f->old_name + "' cannot be patched: " + e);
        }
    }
    o->loaded = true;
    o->base = lo.base;
    object_bound(lo);
    return true;
}

void unbind_object(Object *o) {
    o->loaded = false;
    o->base = 0;
    unbind_funcs(o);
}

namespace {

// klp_cleanup_module_patches_limited: removes every patch before `limit` (all if nullptr)
// from the object at `base`, as the kernel does for a going or refused module.
void cleanup_object_patches(uintptr_t base, Patch *limit) {
    for (Patch *p : core_patch_list()) {
        if (p == limit) break;
        for (auto &o : p->objs) {
            if (!o->loaded || o->base != base) continue;
            if (p != g_transition_patch) pre_unpatch_callback(o.get());
            log_fmt("graft: reverting patch '%s' on unloading object '%s'", p->name.c_str(), o->name.c_str());
            if (o->patched) unpatch_object(o.get());
            post_unpatch_callback(o.get());
            unbind_object(o.get());
            break;
        }
    }
}

}  // namespace

namespace {

// The copy of `lo` in patch `p` that is not bound yet, or nullptr (logged when the patch already
// applies to another copy of the same object: a library loaded twice under one name).
Object *unbound_copy(Patch *p, const LoadedObject &lo) {
    Object *o = nullptr;
    bool other_copy = false;
    for (auto &c : p->objs) {
        if (c->name != lo.name) continue;
        if (c->loaded)
            other_copy = true;
        else
            o = c.get();
    }
    if (!o && other_copy)
        log_fmt(
            "graft: patch '%s' already applies to another copy of object '%s'; this copy keeps its original "
            "code",
            p->name.c_str(), lo.name.c_str());
    return o;
}

// Applies `o` (of patch p) to the loading object `lo`. False (logged, `o` unbound) on failure.
bool apply_to_coming(Patch *p, Object *o, const LoadedObject &lo) {
    std::string why;
    if (!bind_object(o, lo, &why)) {
        log_line("graft: " + why);
        return false;
    }
    log_fmt("graft: applying patch '%s' to loading object '%s'", p->name.c_str(), o->name.c_str());
    if (pre_patch_callback(o) != 0) {
        log_fmt("graft: pre-patch callback failed for object '%s'", o->name.c_str());
        unbind_object(o);
        return false;
    }
    patch_object(o);
    if (p == g_transition_patch && !route_through_selector(*o, &why)) {
        log_line("graft: " + why);
        unpatch_object(o);
        post_unpatch_callback(o);
        unbind_object(o);
        return false;
    }
    if (p != g_transition_patch) post_patch_callback(o);
    return true;
}

}  // namespace

bool livepatch_object_coming(const LoadedObject &lo) {
    // klp_module_coming: every patch that names the object, oldest first, so that its func
    // stacks come out as if it had been loaded before all of them.
    bool transition_patch_applied = false;  // its forbidden set grew
    Patch *failed = nullptr;
    Object *failed_obj = nullptr;
    set_object_state_name(lo.name, GRAFT_OBJECT_COMING);
    for (Patch *p : core_patch_list()) {
        Object *o = unbound_copy(p, lo);
        if (!o) continue;
        if (!apply_to_coming(p, o, lo)) {
            failed = p;
            failed_obj = o;
            break;
        }
        transition_patch_applied |= p == g_transition_patch;
    }
    if (failed) {
        log_fmt("graft: patch '%s' failed for object '%s', refusing to load object '%s'",
                failed->name.c_str(), failed_obj->name.c_str(), failed_obj->name.c_str());
        // The object keeps none of the patches: it runs its original code and stays out of the
        // live set, so no later patch binds to it (docs/design.md, "Objects coming and going").
        cleanup_object_patches(lo.base, failed);
    }
    set_object_state_name(lo.name, GRAFT_OBJECT_LIVE);
    route_settled_functions();
    if (transition_patch_applied && !failed) transition_objects_changed();
    return !failed;
}

void livepatch_object_going(const LoadedObject &lo) {
    // klp_module_going: after the object's destructors (which ran with the patches), before
    // its code is unmapped.
    bool transition_patch_bound = false;  // its forbidden set shrinks
    if (g_transition_patch)
        for (auto &o : g_transition_patch->objs) transition_patch_bound |= o->loaded && o->base == lo.base;
    set_object_state_name(lo.name, GRAFT_OBJECT_GOING);
    cleanup_object_patches(lo.base, nullptr);
    set_object_state_name(lo.name, GRAFT_OBJECT_LIVE);
    for (Patch *p : core_unloadable_list())
        for (auto &o : p->objs)
            if (o->loaded && o->base == lo.base) unbind_object(o.get());
    // The gates of its functions stay as they are: its code is about to be unmapped, and no
    // thread may call into an object that is being unloaded.
    retire_stacks(lo.text_lo, lo.text_hi);
    // Signal handlers must not walk this code's frames with its rows once another object may be
    // mapped in its place: dropped now, readers waited for (frame_rules.hpp).
    frame_rules_forget(lo.text_lo, lo.text_hi);
    // No patch is bound to it any more: its symbols are read again if it comes back.
    symbol_cache_forget(lo.path);
    if (transition_patch_bound) transition_objects_changed();
}

}  // namespace graft
