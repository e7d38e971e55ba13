/* test_klp_sysfs_demo: stands for the kernel's test_klp_callbacks_demo in test-sysfs.sh (tests/
 * scenarios/klp_sysfs_test.cpp): objects main (no functions) and test_klp_sysfs_mod, each with
 * the four callbacks logging as test_klp_callbacks_demo's do; test_klp_sysfs_mod_show() is
 * replaced, so that the object's `patched` can be checked against what runs. */
#include <graft/graft.h>

#define pr_info(fmt, ...) graft_log("test_klp_sysfs_demo: " fmt, ##__VA_ARGS__)

static const char *const module_state[] = {
    [GRAFT_OBJECT_LIVE] = "[MODULE_STATE_LIVE] Normal state",
    [GRAFT_OBJECT_COMING] = "[MODULE_STATE_COMING] Full formed, running module_init",
    [GRAFT_OBJECT_GOING] = "[MODULE_STATE_GOING] Going away",
};

static void callback_info(const char *callback, struct graft_object *obj) {
    if (obj->name)
        pr_info("%s: %s -> %s", callback, obj->name, module_state[graft_object_state(obj)]);
    else
        pr_info("%s: main", callback);
}

static int pre_patch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    return 0;
}

static void post_patch_callback(struct graft_object *obj) { callback_info(__func__, obj); }
static void pre_unpatch_callback(struct graft_object *obj) { callback_info(__func__, obj); }
static void post_unpatch_callback(struct graft_object *obj) { callback_info(__func__, obj); }

static const char *livepatch_test_klp_sysfs_mod_show(void) {
    return "test_klp_sysfs_demo: this has been live patched";
}

static struct graft_func no_funcs[] = {{0}};
static struct graft_func mod_funcs[] = {
    {"test_klp_sysfs_mod_show", (void *)livepatch_test_klp_sysfs_mod_show, 0},
    {0},
};

static struct graft_object objs[] = {
    {NULL, no_funcs, {pre_patch_callback, post_patch_callback, pre_unpatch_callback, post_unpatch_callback}},
    {"test_klp_sysfs_mod",
     mod_funcs,
     {pre_patch_callback, post_patch_callback, pre_unpatch_callback, post_unpatch_callback}},
    {0},
};

static struct graft_patch patch = {"test_klp_sysfs_demo", objs, NULL, false};
GRAFT_PATCH(patch);
