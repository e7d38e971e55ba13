// System states (kernel/livepatch/state.c): a patch declares the states of the system it
// creates or takes over; a newer patch must handle at least the same versions (checked before
// enabling, in core.cpp).
#include <mutex>

#include "agent/livepatch/core.hpp"
#include "agent/livepatch/patch.hpp"
#include "agent/livepatch/transition.hpp"
#include "graft/graft.h"

extern "C" {

__attribute__((visibility("default"))) struct graft_state *graft_get_state(struct graft_patch *patch,
                                                                           unsigned long id) {
    if (!patch || !patch->states) return nullptr;
    for (graft_state *s = patch->states; s->id; s++)
        if (s->id == id) return s;
    return nullptr;
}

// The state of the patch below the one in transition (klp_get_prev_state): meant for callbacks,
// which run with the core mutex held (it is recursive).
__attribute__((visibility("default"))) struct graft_state *graft_get_prev_state(unsigned long id) {
    std::lock_guard<std::recursive_mutex> g(graft::g_core_mutex);
    graft_state *last = nullptr;
    if (!graft::g_transition_patch) return nullptr;
    for (graft::Patch *p : graft::core_patch_list()) {
        if (p == graft::g_transition_patch) break;
        if (graft_state *s = graft_get_state(p->desc, id)) last = s;
    }
    return last;
}

}  // extern "C"
