#include "agent/livepatch/core.hpp"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <memory>

#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/process/object_events.hpp"
#include "agent/process/patch_file.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/hold_stats.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"
#include "agent/unwind/frame_rules.hpp"
#include "agent/unwind/stack_check.hpp"

namespace graft {

std::recursive_mutex g_core_mutex;

namespace {

// klp_patches: enabled patches and the one in transition, in stack order.
auto &g_patches = *new std::list<std::unique_ptr<Patch>>;  // never destroyed: see process/symbols.cpp
// Patches that finished unpatching or were replaced: loaded, waiting for `graft unload`.
auto &g_disabled = *new std::list<std::unique_ptr<Patch>>;
pid_t g_worker_tid = 0;
// Patch handles to dlclose once the core mutex is released: dlclose takes the dynamic linker's
// lock, which a loading thread holds while it waits for the core mutex (object_events.hpp).
// Each with the descriptor of the image it was loaded from (patch_file.hpp), closed after it.
auto &g_to_close = *new std::vector<std::pair<void *, int>>;
bool g_refusing = false;
std::string &g_refuse_why = *new std::string;

struct TargetRecord {  // written by `graft build --target` into the patch
    const char *object;
    const char *build_id;
};

OpResult fail(int err, std::string msg) {
    return OpResult{err, std::move(msg), {}};
}

std::string basename_no_so(const std::string &path) {
    std::string b = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
    if (b.size() > 3 && b.compare(b.size() - 3, 3, ".so") == 0) b.resize(b.size() - 3);
    return b;
}

Patch *find_in(std::list<std::unique_ptr<Patch>> &l, const std::string &name) {
    for (auto &p : l)
        if (p->name == name) return p.get();
    return nullptr;
}

// State compatibility (klp_is_patch_compatible).
bool states_compatible(const graft_patch *np) {
    for (auto &old : g_patches) {
        if (!old->desc || !old->desc->states) continue;
        for (graft_state *os = old->desc->states; os->id; os++) {
            const graft_state *ns = nullptr;
            for (graft_state *s = np->states; s && s->id; s++)
                if (s->id == os->id) ns = s;
            if (!ns) {
                if (np->replace) return false;
                continue;
            }
            if (ns->version < os->version) return false;
        }
    }
    return true;
}

bool size_of_new_func(const Patch &p, void *fn, size_t *size) {
    const SymbolFile *syms = p.syms.get();  // of the bytes that were loaded (patch_file.hpp)
    if (!syms) return false;
    auto off = reinterpret_cast<uintptr_t>(fn) - p.load_bias;
    auto it = syms->funcs_by_addr.find(off);
    if (it == syms->funcs_by_addr.end()) return false;
    *size = syms->syms[it->second].size;
    return *size > 0;
}

int pre_patch(Object *o) {
    int rc = 0;
    if (o->desc && o->desc->callbacks.pre_patch) rc = o->desc->callbacks.pre_patch(o->desc);
    o->pre_patch_ran = rc == 0;
    return rc;
}

void pre_unpatch(Object *o) {
    if (o->desc && o->desc->callbacks.pre_unpatch) o->desc->callbacks.pre_unpatch(o->desc);
}

void free_patch(std::unique_ptr<Patch> p) {
    void *h = p->handle;
    int fd = p->image_fd;
    p.reset();
    if (h || fd >= 0) g_to_close.push_back({h, fd});
}

// Runs after the core mutex is released (see g_to_close).
void close_pending_handles() {
    std::vector<std::pair<void *, int>> v;
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        v.swap(g_to_close);
    }
    for (auto [h, fd] : v) {
        if (h) dlclose(h);
        if (fd >= 0) symbol_cache_forget("/proc/self/fd/" + std::to_string(fd));
        close_patch_image(fd);
    }
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

// klp_init_object_loaded: binds `o` to the live object `lo`, resolving every function. On
// failure nothing of `o` is bound and *why names the function and the reason.
bool bind_object(Object *o, const LoadedObject &lo, std::string *why, int *err = nullptr) {
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
        f->stack = stack_for(f->old_addr, f->old_name, o->name, &e);
        if (!f->stack) {
            // The compiler gave it an entry, and its bytes are not what graft expects: another
            // tool hooks this function (the kernel's ftrace conflict, -EBUSY). The entry stays
            // that tool's.
            std::string serr;
            auto syms = symbols_of(lo.path, &serr);
            uintptr_t pad = f->old_addr - lo.base - arch::kPrefixSize;
            if (syms && !find_stack(f->old_addr) &&
                std::binary_search(syms->patchable_entries.begin(), syms->patchable_entries.end(), pad)) {
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
    return true;
}

void unbind_object(Object *o) {
    o->loaded = false;
    o->base = 0;
    unbind_funcs(o);
}

// klp_add_nops: for every function an enabled patch replaces and `np` does not, a nop entry in
// `np`, so that the replace transition returns it to the original code thread by thread (a
// switched thread runs the original, a pending one the older patch's version).
void add_nops(Patch *np) {
    for (auto &old : g_patches) {
        for (auto &oo : old->objs) {
            Object *no = nullptr;
            for (auto &c : np->objs)
                if (c->name == oo->name) no = c.get();
            for (auto &of : oo->funcs) {
                if (of->nop) continue;
                bool covered = false;
                if (no)
                    for (auto &f : no->funcs)
                        covered |= f->old_name == of->old_name && f->old_sympos == of->old_sympos;
                if (covered) continue;
                if (!no) {
                    auto d = std::make_unique<Object>();
                    d->dynamic = true;
                    d->own_lookup_name = oo->lookup_name ? oo->lookup_name : "";
                    d->lookup_name = oo->lookup_name ? d->own_lookup_name.c_str() : nullptr;
                    d->name = oo->name;
                    d->patch = np;
                    no = d.get();
                    np->objs.push_back(std::move(d));
                }
                auto f = std::make_unique<Func>();
                f->old_name = of->old_name;
                f->old_sympos = of->old_sympos;
                f->nop = true;
                f->obj = no;
                no->funcs.push_back(std::move(f));
            }
        }
    }
}

// klp_cleanup_module_patches_limited: removes every patch before `limit` (all if nullptr)
// from the object at `base`, as the kernel does for a going or refused module.
void cleanup_object_patches(uintptr_t base, Patch *limit) {
    for (auto &p : g_patches) {
        if (p.get() == limit) break;
        for (auto &o : p->objs) {
            if (!o->loaded || o->base != base) continue;
            if (p.get() != g_transition_patch) pre_unpatch(o.get());
            log_fmt("graft: reverting patch '%s' on unloading object '%s'", p->name.c_str(), o->name.c_str());
            if (o->patched) unpatch_object(o.get());
            core_post_unpatch(o.get());
            unbind_object(o.get());
            break;
        }
    }
}

}  // namespace

pid_t core_worker_tid() {
    return g_worker_tid;
}
void core_set_worker_tid(pid_t t) {
    g_worker_tid = t;
}

bool core_refusing(std::string *why) {
    if (!g_refusing && code_writer_broken(why)) core_refuse(*why);
    if (g_refusing) *why = g_refuse_why;
    return g_refusing;
}
void core_refuse(const std::string &why) {
    g_refusing = true;
    g_refuse_why = why;
    log_line("graft: refusing further patching: " + why);
}

std::vector<Patch *> core_patch_list() {
    std::vector<Patch *> v;
    for (auto &p : g_patches) v.push_back(p.get());
    return v;
}

Patch *core_find_patch_by_desc(const void *desc) {
    for (auto &p : g_patches)
        if (p->desc == desc) return p.get();
    return nullptr;
}

void core_post_patch(Object *o) {
    if (o->desc && o->desc->callbacks.post_patch) o->desc->callbacks.post_patch(o->desc);
}

void core_post_unpatch(Object *o) {
    if (o->pre_patch_ran && o->desc && o->desc->callbacks.post_unpatch)
        o->desc->callbacks.post_unpatch(o->desc);
    o->pre_patch_ran = false;
}

void core_unpatch_objects(Patch *p) {
    for (auto &o : p->objs)
        if (o->patched) unpatch_object(o.get());
}

void core_unpatch_replaced_patches(Patch *np) {
    for (auto &p : g_patches) {
        if (p.get() == np) break;
        p->enabled = false;
        core_unpatch_objects(p.get());
    }
}

void core_discard_nops(Patch *np) {
    for (auto &o : np->objs) {
        for (auto it = o->funcs.begin(); it != o->funcs.end();) {
            if (!(*it)->nop) {
                ++it;
                continue;
            }
            if ((*it)->patched) pop_func(it->get());
            np->discarded_funcs.push_back(std::move(*it));
            it = o->funcs.erase(it);
        }
        if (o->dynamic) o->patched = false;
    }
    for (auto it = np->objs.begin(); it != np->objs.end();) {
        if ((*it)->dynamic) {
            np->discarded_objs.push_back(std::move(*it));
            it = np->objs.erase(it);
        } else {
            ++it;
        }
    }
}

void core_route_settled_functions() {
    std::vector<RouteChange> routes;
    for (FuncStack *fs : all_stacks()) {
        Func *top = fs->top.load(std::memory_order_relaxed);
        if (top && top->transition.load(std::memory_order_relaxed)) continue;
        bool open = top != nullptr;
        uintptr_t target = open ? direct_target(fs) : fs->entry.body;
        if (open == fs->gate_open && (target == fs->routed_to || !open)) continue;
        routes.push_back({fs, open, target});
    }
    std::string why;
    if (!apply_routes(routes, &why)) {
        // Every entry still runs the selector, which gives the same answer: correct, only slower.
        log_line("graft: could not route settled functions directly: " + why);
    }
}

void core_transition_finished(Patch *p, int target) {
    if (target == kPatched && p->replace) {
        // Replaced patches leave the list; they can be unloaded, their callbacks never run.
        for (auto it = g_patches.begin(); it != g_patches.end();) {
            if (it->get() == p) break;
            (*it)->in_list = false;
            (*it)->replaced = true;
            for (auto &o : (*it)->objs) o->patched = false;
            g_disabled.push_back(std::move(*it));
            it = g_patches.erase(it);
        }
    }
    if (target == kUnpatched) {
        for (auto it = g_patches.begin(); it != g_patches.end(); ++it) {
            if (it->get() != p) continue;
            p->in_list = false;
            g_disabled.push_back(std::move(*it));
            g_patches.erase(it);
            break;
        }
    }
}

void core_mark_forced(Patch *p, int target) {
    if (target == kUnpatched) {
        p->forced = true;
    } else if (p->replace) {
        for (auto &o : g_patches)
            if (o.get() != p) o->forced = true;
    }
}

bool core_object_coming(const LoadedObject &lo) {
    // klp_module_coming: every patch that names the object, oldest first, so that its func
    // stacks come out as if it had been loaded before all of them.
    bool transition_patch_applied = false;  // its forbidden set grew
    Patch *failed = nullptr;
    Object *failed_obj = nullptr;
    std::string why;
    set_object_state_name(lo.name, GRAFT_OBJECT_COMING);
    for (auto &p : g_patches) {
        Object *o = nullptr;
        bool other_copy = false;
        for (auto &c : p->objs) {
            if (c->name != lo.name) continue;
            if (c->loaded)
                other_copy = true;
            else
                o = c.get();
        }
        if (!o) {
            if (other_copy)
                log_fmt(
                    "graft: patch '%s' already applies to another copy of object '%s'; this copy keeps its "
                    "original code",
                    p->name.c_str(), lo.name.c_str());
            continue;
        }
        if (!bind_object(o, lo, &why)) {
            log_line("graft: " + why);
            failed = p.get();
            failed_obj = o;
            break;
        }
        log_fmt("graft: applying patch '%s' to loading object '%s'", p->name.c_str(), o->name.c_str());
        if (pre_patch(o) != 0) {
            log_fmt("graft: pre-patch callback failed for object '%s'", o->name.c_str());
            failed = p.get();
            failed_obj = o;
            unbind_object(o);
            break;
        }
        patch_object(o);
        if (p.get() == g_transition_patch && !route_through_selector(*o, &why)) {
            log_line("graft: " + why);
            unpatch_object(o);
            core_post_unpatch(o);
            unbind_object(o);
            failed = p.get();
            failed_obj = o;
            break;
        }
        if (p.get() != g_transition_patch) core_post_patch(o);
        transition_patch_applied |= p.get() == g_transition_patch;
    }
    if (failed) {
        log_fmt("graft: patch '%s' failed for object '%s', refusing to load object '%s'",
                failed->name.c_str(), failed_obj->name.c_str(), failed_obj->name.c_str());
        // The object keeps none of the patches: it runs its original code and stays out of the
        // live set, so no later patch binds to it (docs/design.md, "Objects coming and going").
        cleanup_object_patches(lo.base, failed);
    }
    set_object_state_name(lo.name, GRAFT_OBJECT_LIVE);
    core_route_settled_functions();
    if (transition_patch_applied && !failed) transition_objects_changed();
    return !failed;
}

void core_object_going(const LoadedObject &lo) {
    // klp_module_going: after the object's destructors (which ran with the patches), before
    // its code is unmapped.
    bool transition_patch_bound = false;  // its forbidden set shrinks
    if (g_transition_patch)
        for (auto &o : g_transition_patch->objs) transition_patch_bound |= o->loaded && o->base == lo.base;
    set_object_state_name(lo.name, GRAFT_OBJECT_GOING);
    cleanup_object_patches(lo.base, nullptr);
    set_object_state_name(lo.name, GRAFT_OBJECT_LIVE);
    for (auto &p : g_disabled)
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

namespace {
struct PreparedPatch {
    void *handle = nullptr;
    PatchImage image;
    uintptr_t load_bias = 0;
    graft_patch *desc = nullptr;
    const graft_ref *(*getrefs)(const graft_ref **) = nullptr;
    const TargetRecord *targets = nullptr;
};

// Everything of a load that calls into the dynamic linker, done before the core mutex is taken.
OpResult prepare_patch(const std::string &path, PreparedPatch *pp) {
    std::string why;
    // Opened, checked and copied once (patch_file.hpp): nothing of a file that is not a complete,
    // trusted patch runs in the process, and what dlopen maps is what was checked.
    if (int err = open_patch_file(path, &pp->image, &why)) return fail(err, why);
    void *h = dlopen(pp->image.dl_path.c_str(), RTLD_NOW | RTLD_LOCAL);
    auto refuse = [&](int err, const std::string &msg) {
        if (h) dlclose(h);
        close_patch_image(pp->image.fd);
        pp->image = {};
        return fail(err, msg);
    };
    if (!h) {
        const char *e = dlerror();
        return refuse(ENOEXEC, std::string("'") + path + "' cannot be loaded: " + (e ? e : "?"));
    }
    auto getdesc = reinterpret_cast<graft_patch *(*)()>(dlsym(h, "graft_patch_descriptor"));
    pp->getrefs = reinterpret_cast<const graft_ref *(*)(const graft_ref **)>(dlsym(h, "graft_patch_refs"));
    auto *abi = static_cast<const unsigned *>(dlsym(h, "graft_patch_abi"));
    pp->targets = static_cast<const TargetRecord *>(dlsym(h, "graft_patch_targets"));
    link_map *lm = nullptr;
    if (!getdesc || !pp->getrefs || !abi || dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return refuse(EINVAL, "'" + path + "' is not a graft patch (no GRAFT_PATCH descriptor)");
    if (*abi != GRAFT_ABI_VERSION)
        return refuse(EINVAL, "'" + path + "' was built for graft ABI " + std::to_string(*abi) +
                                  ", this agent speaks " + std::to_string(GRAFT_ABI_VERSION));
    pp->handle = h;
    pp->load_bias = lm->l_addr;
    pp->desc = getdesc();
    return {};
}

OpResult load_locked(const std::string &path, const PreparedPatch &pp) {
    std::string why;
    if (core_refusing(&why)) {
        g_to_close.push_back({pp.handle, pp.image.fd});
        return fail(EPERM, "the agent refuses patching: " + why);
    }
    if (g_transition_patch) {
        g_to_close.push_back({pp.handle, pp.image.fd});
        return fail(EBUSY, "patch '" + g_transition_patch->name + "' is in transition");
    }
    void *h = pp.handle;
    graft_patch *desc = pp.desc;
    auto getrefs = pp.getrefs;
    auto p = std::make_unique<Patch>();
    p->path = path;
    p->handle = h;
    p->image_fd = pp.image.fd;
    p->syms = pp.image.syms;
    p->load_bias = pp.load_bias;
    p->desc = desc;
    p->name = desc && desc->name ? desc->name : basename_no_so(path);
    auto reject = [&](int err, const std::string &msg) {
        free_patch(std::move(p));
        return fail(err, msg);
    };
    const std::string pname = "patch '" + p->name + "'";
    if (find_in(g_patches, p->name) || find_in(g_disabled, p->name))
        return reject(EEXIST, pname + " is already loaded");
    if (!desc || !desc->objs) return reject(EINVAL, pname + ": the descriptor has no objects");
    p->replace = desc->replace;
    // klp_enable_patch checks the system states first: an incompatible patch logs this one line.
    if (!states_compatible(desc)) {
        log_fmt("graft: Livepatch patch (%s) is not compatible with the already installed livepatches.",
                p->name.c_str());
        return reject(EINVAL, pname + " is not compatible with the already installed patches");
    }
    const TargetRecord *targets = pp.targets;

    // Objects and functions (klp_init_patch / klp_init_object / klp_init_func).
    for (graft_object *od = desc->objs; od->name || od->funcs; od++) {
        auto o = std::make_unique<Object>();
        o->desc = od;
        o->lookup_name = od->name;
        o->name = object_display_name(od->name);
        o->patch = p.get();
        if (!od->funcs) return reject(EINVAL, pname + ", object '" + o->name + "': funcs is NULL");
        for (const TargetRecord *t = targets; t && t->build_id; t++)
            if ((t->object ? std::string(t->object) : std::string("main")) == o->name)
                o->expected_build_id = t->build_id;
        for (graft_func *fd = od->funcs; fd->old_name || fd->new_func || fd->old_sympos; fd++) {
            if (!fd->old_name || !fd->new_func)
                return reject(EINVAL, pname + ", object '" + o->name + "': a function entry lacks " +
                                          (fd->old_name ? "new_func" : "old_name"));
            auto f = std::make_unique<Func>();
            f->old_name = fd->old_name;
            f->old_sympos = fd->old_sympos;
            f->new_func = fd->new_func;
            f->obj = o.get();
            o->funcs.push_back(std::move(f));
        }
        p->objs.push_back(std::move(o));
    }
    if (p->replace) add_nops(p.get());
    // Resolve every symbol of every live object before changing anything; the others are
    // patched when they load (core_object_coming).
    for (auto &o : p->objs) {
        LoadedObject lo;
        if (!find_live_object(o->lookup_name, &lo)) continue;
        int err = EINVAL;
        if (!bind_object(o.get(), lo, &why, &err)) return reject(err, why);
    }
    // References to non-exported symbols of the target (GRAFT_REF).
    const graft_ref *rend = nullptr;
    std::vector<std::pair<void **, void *>> ref_values;
    for (const graft_ref *r = getrefs(&rend); r && r < rend; r++) {
        LoadedObject lo;
        std::string on = object_display_name(r->object);
        if (!find_live_object(r->object, &lo))
            return reject(EINVAL, pname + ": GRAFT_REF to '" + (r->name ? r->name : "?") +
                                      "' names object '" + on + "', which is not loaded");
        Resolved res;
        if (!r->name || !resolve_symbol(lo, r->name, r->sympos, false, &res, &why))
            return reject(EINVAL,
                          pname + ", object '" + on + "': " + (r->name ? why : "GRAFT_REF without a name"));
        ref_values.emplace_back(r->addr, reinterpret_cast<void *>(res.addr));
    }
    for (auto &[addr, value] : ref_values) *addr = value;

    // __klp_enable_patch.
    Patch *raw = p.get();
    p->in_list = true;
    g_patches.push_back(std::move(p));
    log_fmt("graft: enabling patch '%s'", raw->name.c_str());
    init_transition(raw, kPatched);
    std::string failure;
    int failure_err = EINVAL;
    for (auto &o : raw->objs) {
        if (!o->loaded) continue;
        if (int rc = pre_patch(o.get()); rc != 0) {
            log_fmt("graft: pre-patch callback failed for object '%s'", o->name.c_str());
            failure = pname + ": pre-patch callback failed for object '" + o->name + "'";
            // As klp_enable_patch does, the callback's own error (-errno) is the request's.
            if (rc < 0 && rc > -4096) failure_err = -rc;
            break;
        }
        patch_object(o.get());
    }
    if (failure.empty() && !start_transition(&why)) failure = pname + ": " + why;
    if (!failure.empty()) {
        log_fmt("graft: failed to enable patch '%s'", raw->name.c_str());
        cancel_transition();
        // The canceled patch left the list; free it so the process is as it was.
        for (auto it = g_disabled.begin(); it != g_disabled.end(); ++it) {
            if (it->get() != raw) continue;
            std::unique_ptr<Patch> dead = std::move(*it);
            g_disabled.erase(it);
            free_patch(std::move(dead));
            break;
        }
        return fail(failure_err, failure);
    }
    raw->enabled = true;
    // The first try runs on the worker right after this request is answered (the retry is due
    // now), so `graft load --no-wait` returns as soon as the transition started.
    OpResult ok;
    ok.patch = raw->name;
    return ok;
}
}  // namespace

OpResult core_load(const std::string &path) {
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        std::string why;
        if (core_refusing(&why)) return fail(EPERM, "the agent refuses patching: " + why);
        if (g_transition_patch)
            return fail(EBUSY, "patch '" + g_transition_patch->name + "' is in transition");
    }
    PreparedPatch pp;
    OpResult r = prepare_patch(path, &pp);
    if (r.err) return r;
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        r = load_locked(path, pp);
    }
    close_pending_handles();
    return r;
}

OpResult core_disable(const std::string &name) {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    Patch *p = find_in(g_patches, name);
    if (!p) {
        if (find_in(g_disabled, name)) return fail(EINVAL, "patch '" + name + "' is already disabled");
        return fail(ENOENT, "no patch named '" + name + "'");
    }
    if (p == g_transition_patch) {
        if (!p->enabled) return fail(EINVAL, "patch '" + name + "' is already being disabled");
        reverse_transition();
        try_complete_transition();
        return {};
    }
    if (!p->enabled) return fail(EINVAL, "patch '" + name + "' is already disabled");
    if (g_transition_patch) return fail(EBUSY, "patch '" + g_transition_patch->name + "' is in transition");
    // __klp_disable_patch
    init_transition(p, kUnpatched);
    for (auto &o : p->objs)
        if (o->patched) pre_unpatch(o.get());
    std::string why;
    if (!start_transition(&why)) {
        // Routing failed: nothing changed in the code and no thread switched; the patch stays
        // enabled. Its pre_unpatch callbacks ran, so post_patch runs again, as at the end of an
        // unpatching transition the kernel reverses: the patch's callbacks see a consistent
        // pre_unpatch -> post_patch sequence (docs/patch-authors-guide.md, "Callbacks").
        abort_unstarted_transition();
        for (auto &o : p->objs)
            if (o->patched) core_post_patch(o.get());
        log_fmt("graft: '%s': staying enabled", name.c_str());
        return fail(EIO, "patch '" + name + "': the unpatching transition cannot start: " + why);
    }
    p->enabled = false;
    try_complete_transition();
    return {};
}

OpResult core_enable(const std::string &name) {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    Patch *p = find_in(g_patches, name);
    if (!p) {
        if (Patch *d = find_in(g_disabled, name))
            return fail(EINVAL,
                        "patch '" + name + "' " +
                            (d->replaced ? "was replaced by a cumulative patch" : "finished unpatching") +
                            "; unload it and load it again");
        return fail(ENOENT, "no patch named '" + name + "'");
    }
    if (p->enabled) return fail(EINVAL, "patch '" + name + "' is already enabled");
    if (p != g_transition_patch) return fail(EINVAL, "patch '" + name + "' cannot be re-enabled");
    reverse_transition();
    try_complete_transition();
    return {};
}

OpResult core_force(const std::string &name) {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    Patch *p = find_in(g_patches, name);
    if (!p) return fail(ENOENT, "no patch named '" + name + "'");
    if (p != g_transition_patch) return fail(EINVAL, "patch '" + name + "' is not in transition");
    force_transition();
    try_complete_transition();
    return {};
}

namespace {
OpResult unload_locked(const std::string &name) {
    if (find_in(g_patches, name))
        return fail(EBUSY, "patch '" + name + "' is enabled or in transition; disable it first");
    for (auto it = g_disabled.begin(); it != g_disabled.end(); ++it) {
        if ((*it)->name != name) continue;
        if ((*it)->forced)
            return fail(EBUSY,
                        "patch '" + name + "' took part in a forced transition and its code may still run");
        std::unique_ptr<Patch> dead = std::move(*it);
        g_disabled.erase(it);
        free_patch(std::move(dead));
        return {};
    }
    return fail(ENOENT, "no patch named '" + name + "'");
}
}  // namespace

OpResult core_unload(const std::string &name) {
    OpResult r;
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        r = unload_locked(name);
    }
    close_pending_handles();
    return r;
}

namespace {
nlohmann::json patch_json(const Patch &p, int order) {
    nlohmann::json objs = nlohmann::json::array();
    for (auto &o : p.objs) {
        nlohmann::json funcs = nlohmann::json::array();
        for (auto &f : o->funcs)
            funcs.push_back({{"name", f->old_name},
                             {"sympos", f->old_sympos ? f->old_sympos : 1},
                             {"patched", f->patched},
                             {"nop", f->nop}});
        objs.push_back({{"name", o->name}, {"patched", o->patched}, {"loaded", o->loaded}, {"funcs", funcs}});
    }
    return {{"name", p.name},       {"path", p.path},
            {"enabled", p.enabled}, {"transition", &p == g_transition_patch},
            {"replace", p.replace}, {"forced", p.forced},
            {"stack_order", order}, {"objects", objs}};
}
}  // namespace

nlohmann::json core_status() {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    nlohmann::json patches = nlohmann::json::array();
    int order = 1;
    for (auto &p : g_patches) patches.push_back(patch_json(*p, order++));
    nlohmann::json disabled = nlohmann::json::array();
    for (auto &p : g_disabled) disabled.push_back(patch_json(*p, 0));
    nlohmann::json tr = nullptr;
    if (g_transition_patch) {
        nlohmann::json pend = nlohmann::json::array();
        for (auto &r : thread_reports())
            if (r.pending) pend.push_back({{"tid", r.tid}, {"name", r.name}, {"reason", r.reason}});
        tr = {{"patch", g_transition_patch->name},
              {"target", g_view.target_state.load() == kPatched ? "patched" : "unpatched"},
              {"elapsed", transition_elapsed_seconds()},
              {"pending", pend}};
    }
    std::string why;
    const HandlerWalkStats hs = stack_check_handler_stats();
    const ReadAheadStats ra = read_ahead_stats();
    auto hold = [](HoldKind k) {
        const HoldSummary h = hold_summary(k);
        // [[upper edge in µs or null, count], ...]
        nlohmann::json hist = nlohmann::json::array();
        for (int b = 0; b < kHoldBuckets; b++)
            hist.push_back(
                {b < kHoldBuckets - 1 ? nlohmann::json(kHoldBucketsUs[b]) : nlohmann::json(nullptr),
                 h.buckets[b]});
        return nlohmann::json{{"count", h.count},
                              {"total_us", static_cast<double>(h.total_ns) / 1e3},
                              {"max_us", static_cast<double>(h.max_ns) / 1e3},
                              {"histogram_us", hist}};
    };
    return {
        {"pid", getpid()},
        {"patches", patches},
        {"unloadable", disabled},
        {"transition", tr},
        {"objects_watched", objects_watched()},
        {"signal_walks",
         {{"with_rows", hs.cached},
          {"with_libgcc", hs.full},
          {"timed_out", hs.timed_out},
          {"rows", hs.rows}}},
        {"self_check_walks",
         {{"with_rows", hs.self_cached}, {"with_libgcc", hs.self_full}, {"timed_out", hs.self_timed_out}}},
        {"holds", {{"signal", hold(HoldKind::kSignal)}, {"self_check", hold(HoldKind::kSelfCheck)}}},
        {"read_ahead", {{"passes", ra.passes}, {"threads", ra.threads}}},
        {"refusing", core_refusing(&why) ? nlohmann::json(why) : nlohmann::json(nullptr)}};
}

nlohmann::json core_threads() {
    std::lock_guard<std::recursive_mutex> g(g_core_mutex);
    nlohmann::json v = nlohmann::json::array();
    for (auto &r : thread_reports())
        v.push_back({{"tid", r.tid},
                     {"name", r.name},
                     {"patch_state", r.state},
                     {"pending", r.pending},
                     {"reason", r.reason}});
    return v;
}

}  // namespace graft
