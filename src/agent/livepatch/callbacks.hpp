// A patch object's callbacks (the kernel's klp_pre_patch_callback() and its three siblings in
// kernel/livepatch/core.h): when each runs, and the rule that post_unpatch runs only after a
// pre_patch that succeeded. Core mutex held by every caller.
#pragma once

namespace graft {

struct Object;

// 0, or the callback's own error (a negative errno value by convention); remembers the success.
int pre_patch_callback(Object *o);
void post_patch_callback(Object *o);
void pre_unpatch_callback(Object *o);
// Only if pre_patch succeeded for `o`; forgets that it did.
void post_unpatch_callback(Object *o);

}  // namespace graft
