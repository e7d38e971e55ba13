/* objects_going_fix: b() (objects_lib.so) returns 1, and the object's unpatch callbacks read the
 * library's own data (objects_lib_tag, through GRAFT_REF) as the kernel's module_going callbacks
 * may read the module's: the library must still be mapped when they run, after its destructors.
 * The reference is resolved when the patch loads, so the library must be loaded then. */
#include <graft/graft.h>

static const char *tag;
GRAFT_REF("objects_lib.so", "objects_lib_tag", 0, tag);

static const char *state_name(struct graft_object *obj) {
    switch (graft_object_state(obj)) {
        case GRAFT_OBJECT_LIVE:
            return "live";
        case GRAFT_OBJECT_COMING:
            return "coming";
        case GRAFT_OBJECT_GOING:
            return "going";
    }
    return "?";
}

static void pre_unpatch(struct graft_object *obj) {
    graft_log("objects_going_fix: pre_unpatch %s (%s): %s", obj->name, state_name(obj), tag);
}

static void post_unpatch(struct graft_object *obj) {
    graft_log("objects_going_fix: post_unpatch %s (%s): %s", obj->name, state_name(obj), tag);
}

static int b_v2(void) { return 1; }

static struct graft_func lib_funcs[] = {{"b", (void *)b_v2, 0}, {0}};
static struct graft_object objs[] = {
    {"objects_lib.so", lib_funcs, {NULL, NULL, pre_unpatch, post_unpatch}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
