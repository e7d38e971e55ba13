#include "agent/livepatch/core.hpp"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <list>
#include <memory>

#include "agent/livepatch/callbacks.hpp"
#include "agent/livepatch/object_binding.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition.hpp"
#include "agent/process/code_writer.hpp"
#include "agent/process/object_events.hpp"
#include "agent/process/patch_file.hpp"
#include "agent/process/symbols.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {

std::recursive_mutex g_core_mutex;

namespace {

// klp_patches: enabled patches and the one in transition, in stack order.
auto &g_patches = *new std::list<std::unique_ptr<Patch>>;  // never destroyed: see process/symbols.cpp
// Patches that finished unpatching or were replaced: loaded, waiting for `graft unload`.
auto &g_disabled = *new std::list<std::unique_ptr<Patch>>;
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

}  // namespace

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

std::vector<Patch *> core_unloadable_list() {
    std::vector<Patch *> v;
    for (auto &p : g_disabled) v.push_back(p.get());
    return v;
}

Patch *core_find_patch_by_desc(const void *desc) {
    for (auto &p : g_patches)
        if (p->desc == desc) return p.get();
    return nullptr;
}

void core_unpatch_replaced_patches(Patch *np) {
    for (auto &p : g_patches) {
        if (p.get() == np) break;
        p->enabled = false;
        unpatch_objects(p.get());
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

namespace {
struct PreparedPatch {
    void *handle = nullptr;
    PatchImage image;
    uintptr_t load_bias = 0;
    graft_patch *desc = nullptr;
    const graft_ref *(*getrefs)(const graft_ref **) = nullptr;
    const graft_reloc *(*getrelocs)(const graft_reloc **) = nullptr;  // generated patches only
    link_map *lm = nullptr;
    const TargetRecord *targets = nullptr;
};

// Everything of a load that calls into the dynamic linker, done before the core mutex is taken.
OpResult prepare_patch(const std::string &path, PreparedPatch *pp) {
    std::string why;
    // Opened, checked and copied once (patch_file.hpp): nothing of a file that is not a complete,
    // trusted patch runs in the process, and what dlopen maps is what was checked.
    if (int err = open_patch_file(path, &pp->image, &why)) return fail(err, why);
    if (pp->image.text_relocations && code_pages_locked()) {
        // ld.so would make the code writable, relocate it, and fail to make it executable again.
        close_patch_image(pp->image.fd);
        pp->image = {};
        return fail(EPERM,
                    "'" + path +
                        "' has relocations in its code (a patch made by `graft diff`), which the dynamic "
                        "loader applies by making the code writable first; this process forbids writable "
                        "code that becomes executable (prctl(PR_SET_MDWE) or MemoryDenyWriteExecute=): "
                        "build the fix as a patch source with `graft build`");
    }
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
    pp->getrelocs =
        reinterpret_cast<const graft_reloc *(*)(const graft_reloc **)>(dlsym(h, "graft_patch_relocs"));
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
    pp->lm = lm;
    pp->desc = getdesc();
    return {};
}

// Why no patch may be loaded now, or {} (checked before the patch file is opened, and again
// under the mutex that the load then holds).
OpResult load_refused() {
    std::string why;
    if (core_refusing(&why)) return fail(EPERM, "the agent refuses patching: " + why);
    if (g_transition_patch) return fail(EBUSY, "patch '" + g_transition_patch->name + "' is in transition");
    return {};
}

// klp_init_object / klp_init_func: the objects and functions the descriptor lists, each object
// with the build-id `graft build --target` recorded for it.
OpResult init_objects(Patch *p, const TargetRecord *targets) {
    const std::string pname = "patch '" + p->name + "'";
    for (graft_object *od = p->desc->objs; od->name || od->funcs; od++) {
        auto o = std::make_unique<Object>();
        o->desc = od;
        o->lookup_name = od->name;
        o->name = object_display_name(od->name);
        o->patch = p;
        if (!od->funcs) return fail(EINVAL, pname + ", object '" + o->name + "': funcs is NULL");
        for (const TargetRecord *t = targets; t && t->build_id; t++)
            if ((t->object ? std::string(t->object) : std::string("main")) == o->name)
                o->expected_build_id = t->build_id;
        for (graft_func *fd = od->funcs; fd->old_name || fd->new_func || fd->old_sympos; fd++) {
            if (!fd->old_name || !fd->new_func)
                return fail(EINVAL, pname + ", object '" + o->name + "': a function entry lacks " +
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
    return {};
}

// klp_init_patch: a Patch for the prepared image, its objects and nops, bound to every live
// object (the others are patched when they load: livepatch_object_coming()). No code of the
// process changes here; binding an object may route its DT_FINI through graft (fini_watch.hpp),
// which stays if the patch then fails and only adds a call to the object's `_fini`.
OpResult init_patch(const std::string &path, const PreparedPatch &pp, std::unique_ptr<Patch> *out) {
    auto p = std::make_unique<Patch>();
    p->path = path;
    p->handle = pp.handle;
    p->image_fd = pp.image.fd;
    p->syms = pp.image.syms;
    p->load_bias = pp.load_bias;
    p->desc = pp.desc;
    p->name = pp.desc && pp.desc->name ? pp.desc->name : basename_no_so(path);
    *out = std::move(p);
    Patch *raw = out->get();
    const std::string pname = "patch '" + raw->name + "'";
    if (find_in(g_patches, raw->name) || find_in(g_disabled, raw->name))
        return fail(EEXIST, pname + " is already loaded");
    if (!raw->desc || !raw->desc->objs) return fail(EINVAL, pname + ": the descriptor has no objects");
    raw->replace = raw->desc->replace;
    // klp_enable_patch checks the system states first: an incompatible patch logs this one line.
    if (!states_compatible(raw->desc)) {
        log_fmt("graft: Livepatch patch (%s) is not compatible with the already installed livepatches.",
                raw->name.c_str());
        return fail(EINVAL, pname + " is not compatible with the already installed patches");
    }
    if (OpResult r = init_objects(raw, pp.targets); r.err) return r;
    if (raw->replace) add_nops(raw);
    // Every symbol of every live object is resolved before anything changes.
    for (auto &o : raw->objs) {
        LoadedObject lo;
        if (!find_live_object(o->lookup_name, &lo)) continue;
        int err = EINVAL;
        std::string why;
        if (!bind_object(o.get(), lo, &why, &err)) return fail(err, why);
    }
    return {};
}

// References to non-exported symbols of the target (GRAFT_REF): all resolved, then all written.
OpResult resolve_refs(const Patch &p, const PreparedPatch &pp) {
    const std::string pname = "patch '" + p.name + "'";
    const graft_ref *rend = nullptr;
    std::vector<std::pair<void **, void *>> ref_values;
    std::string why;
    for (const graft_ref *r = pp.getrefs(&rend); r && r < rend; r++) {
        LoadedObject lo;
        std::string on = object_display_name(r->object);
        if (!find_live_object(r->object, &lo))
            return fail(EINVAL, pname + ": GRAFT_REF to '" + (r->name ? r->name : "?") + "' names object '" +
                                    on + "', which is not loaded");
        Resolved res;
        if (!r->name || !resolve_symbol(lo, r->name, r->sympos, false, &res, &why))
            return fail(EINVAL,
                        pname + ", object '" + on + "': " + (r->name ? why : "GRAFT_REF without a name"));
        ref_values.emplace_back(r->addr, reinterpret_cast<void *>(res.addr));
    }
    // The fields a generated patch (graft diff) left for the target's symbols: each inside the
    // patch itself, 8 bytes, resolved like a GRAFT_REF. None of the patch's code can run yet, so
    // the fields are written as plain copies, all or none.
    std::vector<CodeWrite> writes;
    const graft_reloc *xend = nullptr;
    for (const graft_reloc *r = pp.getrelocs ? pp.getrelocs(&xend) : nullptr; r && r < xend; r++) {
        const std::string sym = r->name ? r->name : "?";
        Dl_info info{};
        link_map *owner = nullptr;
        if (!r->where || !dladdr1(r->where, &info, reinterpret_cast<void **>(&owner), RTLD_DL_LINKMAP) ||
            owner != pp.lm ||
            !dladdr1(static_cast<char *>(r->where) + 7, &info, reinterpret_cast<void **>(&owner),
                     RTLD_DL_LINKMAP) ||
            owner != pp.lm)
            return fail(EINVAL, pname + ": the reference to '" + sym + "' points outside the patch");
        LoadedObject lo;
        std::string on = object_display_name(r->object);
        if (!find_live_object(r->object, &lo))
            return fail(EINVAL, pname + ": a reference to '" + sym + "' names object '" + on +
                                    "', which is not loaded");
        Resolved res;
        if (!r->name || !resolve_symbol(lo, r->name, r->sympos, false, &res, &why))
            return fail(EINVAL,
                        pname + ", object '" + on + "': " + (r->name ? why : "a reference without a name"));
        const uint64_t value = res.addr + static_cast<uint64_t>(r->addend);
        for (int half = 0; half < 2; half++) {
            CodeWrite w{reinterpret_cast<uintptr_t>(r->where) + 4u * half, 4, {}};
            std::memcpy(w.bytes, reinterpret_cast<const uint8_t *>(&value) + 4 * half, 4);
            writes.push_back(w);
        }
    }
    if (!writes.empty() && !write_code(writes, &why))
        return fail(EFAULT, pname + ": cannot write its references to the target: " + why);
    for (auto &[addr, value] : ref_values) *addr = value;
    return {};
}

// __klp_enable_patch: `p` joins the list, its objects run pre_patch and are pushed, and its
// transition starts. On failure the transition is canceled and `p` freed: the process is as it
// was before the request.
OpResult enable_patch(std::unique_ptr<Patch> owned) {
    Patch *p = owned.get();
    const std::string pname = "patch '" + p->name + "'";
    p->in_list = true;
    g_patches.push_back(std::move(owned));
    log_fmt("graft: enabling patch '%s'", p->name.c_str());
    init_transition(p, kPatched);
    std::string failure, why;
    int failure_err = EINVAL;
    for (auto &o : p->objs) {
        if (!o->loaded) continue;
        if (int rc = pre_patch_callback(o.get()); rc != 0) {
            log_fmt("graft: pre-patch callback failed for object '%s'", o->name.c_str());
            failure = pname + ": pre-patch callback failed for object '" + o->name + "'";
            // As klp_enable_patch does, the callback's own error (-errno) is the request's.
            if (rc < 0 && rc > -4096) failure_err = -rc;
            break;
        }
        patch_object(o.get());
    }
    if (failure.empty() && !start_transition(&why)) failure = pname + ": " + why;
    if (failure.empty()) {
        p->enabled = true;
        return {};
    }
    log_fmt("graft: failed to enable patch '%s'", p->name.c_str());
    cancel_transition();
    // The canceled patch left the list; free it so the process is as it was.
    for (auto it = g_disabled.begin(); it != g_disabled.end(); ++it) {
        if (it->get() != p) continue;
        std::unique_ptr<Patch> dead = std::move(*it);
        g_disabled.erase(it);
        free_patch(std::move(dead));
        break;
    }
    return fail(failure_err, failure);
}

OpResult load_locked(const std::string &path, const PreparedPatch &pp) {
    if (OpResult r = load_refused(); r.err) {
        g_to_close.push_back({pp.handle, pp.image.fd});
        return r;
    }
    std::unique_ptr<Patch> p;
    OpResult r = init_patch(path, pp, &p);
    if (!r.err) r = resolve_refs(*p, pp);
    if (r.err) {
        free_patch(std::move(p));
        return r;
    }
    const std::string name = p->name;
    r = enable_patch(std::move(p));
    // The first try runs on the worker right after this request is answered (the retry is due
    // now), so `graft load --no-wait` returns as soon as the transition started.
    if (!r.err) r.patch = name;
    return r;
}
}  // namespace

OpResult core_load(const std::string &path) {
    {
        std::lock_guard<std::recursive_mutex> g(g_core_mutex);
        if (OpResult r = load_refused(); r.err) return r;
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
        if (o->patched) pre_unpatch_callback(o.get());
    std::string why;
    if (!start_transition(&why)) {
        // Routing failed: nothing changed in the code and no thread switched; the patch stays
        // enabled. Its pre_unpatch callbacks ran, so post_patch runs again, as at the end of an
        // unpatching transition the kernel reverses: the patch's callbacks see a consistent
        // pre_unpatch -> post_patch sequence (docs/patch-authors-guide.md, "Callbacks").
        abort_unstarted_transition();
        for (auto &o : p->objs)
            if (o->patched) post_patch_callback(o.get());
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

}  // namespace graft
