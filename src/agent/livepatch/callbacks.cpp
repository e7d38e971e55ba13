#include "agent/livepatch/callbacks.hpp"

#include "agent/livepatch/patch.hpp"

namespace graft {

int pre_patch_callback(Object *o) {
    int rc = 0;
    if (o->desc && o->desc->callbacks.pre_patch) rc = o->desc->callbacks.pre_patch(o->desc);
    o->pre_patch_ran = rc == 0;
    return rc;
}

void post_patch_callback(Object *o) {
    if (o->desc && o->desc->callbacks.post_patch) o->desc->callbacks.post_patch(o->desc);
}

void pre_unpatch_callback(Object *o) {
    if (o->desc && o->desc->callbacks.pre_unpatch) o->desc->callbacks.pre_unpatch(o->desc);
}

void post_unpatch_callback(Object *o) {
    if (o->pre_patch_ran && o->desc && o->desc->callbacks.post_unpatch)
        o->desc->callbacks.post_unpatch(o->desc);
    o->pre_patch_ran = false;
}

}  // namespace graft
