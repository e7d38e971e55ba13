// The registry of patches and the operations behind `graft load/disable/enable/force/unload`
// (kernel/livepatch/core.c).
//
// g_core_mutex (klp_mutex) protects the patch list, every Patch/Object/Func field that is not an
// atomic, the func stacks' structure (patch.cpp) and the transition (transition.cpp). It is a
// recursive mutex because patch callbacks, which run with it held, may call graft_get_state()
// or graft_get_prev_state(). It is never taken by the selector, the self-checks, the signal
// handler or graft_shadow_get(): those read only atomics and RCU-protected tables.
#pragma once
#include <sys/types.h>

#include <mutex>
#include <string>
#include <vector>

namespace graft {

struct Patch;

// Protects patches, objects, the transition and per-object state: taken by the worker for every
// request and retry, and by object events. Order: lock_order.hpp.
extern std::recursive_mutex g_core_mutex;

struct OpResult {
    int err = 0;          // errno value; 0 = success
    std::string message;  // "<what>: <why>" without the errno text
    std::string patch;    // core_load: the name of the patch loaded
};

OpResult core_load(const std::string &path);
OpResult core_disable(const std::string &name);
OpResult core_enable(const std::string &name);
OpResult core_force(const std::string &name);
OpResult core_unload(const std::string &name);

// What the end of a transition does to the patch list, as transition.c calls into core.c
// (klp_unpatch_replaced_patches, klp_discard_nops, the list moves of klp_complete_transition and
// the forced marks of klp_force_transition). Core mutex held.
void core_unpatch_replaced_patches(Patch *p);
void core_discard_nops(Patch *p);
void core_transition_finished(Patch *p, int target);
void core_mark_forced(Patch *p, int target);

// The registry, read by state.cpp, object_binding.cpp and status.cpp (core mutex held).
Patch *core_find_patch_by_desc(const void *desc);
std::vector<Patch *> core_patch_list();       // stack order (klp_patches)
std::vector<Patch *> core_unloadable_list();  // finished unpatching or replaced, oldest first

// Sticky failure: an invariant broke; every further patching request is refused.
bool core_refusing(std::string *why);
void core_refuse(const std::string &why);

}  // namespace graft
