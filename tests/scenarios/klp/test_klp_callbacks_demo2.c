/* test_klp_callbacks_demo2 (kernel: selftests/livepatch/test_modules/test_klp_callbacks_demo2.c):
 * the main object only, with the four callbacks. Built twice: REPLACE=1 is the kernel's replace=1
 * parameter (an atomic replace patch), under the same patch name. */
#include <graft/graft.h>

#ifndef REPLACE
#define REPLACE 0
#endif

#define NAME "test_klp_callbacks_demo2"

static const char *const object_states[] = {
    [GRAFT_OBJECT_LIVE] = "[GRAFT_OBJECT_LIVE] Normal state",
    [GRAFT_OBJECT_COMING] = "[GRAFT_OBJECT_COMING] Full formed, running constructors",
    [GRAFT_OBJECT_GOING] = "[GRAFT_OBJECT_GOING] Going away",
};

static void callback_info(const char *callback, struct graft_object *obj) {
    if (obj->name)
        graft_log(NAME ": %s: %s -> %s", callback, obj->name, object_states[graft_object_state(obj)]);
    else
        graft_log(NAME ": %s: main", callback);
}

static int pre_patch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    return 0;
}

static void post_patch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
}

static void pre_unpatch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
}

static void post_unpatch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
}

static struct graft_func no_funcs[] = {{0}};
static struct graft_object objs[] = {
    {NULL, no_funcs, {pre_patch_callback, post_patch_callback, pre_unpatch_callback, post_unpatch_callback}},
    {0},
};
static struct graft_patch patch = {NAME, objs, NULL, REPLACE};
GRAFT_PATCH(patch);
