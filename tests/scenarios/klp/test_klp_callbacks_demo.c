/* test_klp_callbacks_demo (kernel: selftests/livepatch/test_modules/test_klp_callbacks_demo.c):
 * every object has the four callbacks, each saying which callback ran for which object in which
 * state; test_klp_callbacks_busy's busymod_work_func() is replaced. pre_patch returns
 * $PRE_PATCH_RET (the kernel's pre_patch_ret parameter, read at each call so that it can change
 * while the patch is loaded, as a write to /sys/module/.../parameters/pre_patch_ret does). */
#include <graft/graft.h>
#include <stdlib.h>

#define NAME "test_klp_callbacks_demo"

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
    const char *ret = getenv("PRE_PATCH_RET");
    callback_info(__func__, obj);
    return ret ? atoi(ret) : 0;
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

static void *patched_work_func(void *arg) {
    (void)arg;
    graft_log(NAME ": %s", __func__);
    return NULL;
}

#define CALLBACKS {pre_patch_callback, post_patch_callback, pre_unpatch_callback, post_unpatch_callback}

static struct graft_func no_funcs[] = {{0}};
static struct graft_func busymod_funcs[] = {{"busymod_work_func", (void *)patched_work_func, 0}, {0}};
static struct graft_object objs[] = {
    {NULL, no_funcs, CALLBACKS},
    {"test_klp_callbacks_mod", no_funcs, CALLBACKS},
    {"test_klp_callbacks_busy", busymod_funcs, CALLBACKS},
    {0},
};
static struct graft_patch patch = {NAME, objs, NULL, false};
GRAFT_PATCH(patch);
