/* test_klp_state (kernel: test_modules/test_klp_state.c): a cumulative patch (replace) that
 * declares system state 1, version 1 — console_loglevel saved in pre_patch's allocation, raised
 * in post_patch, restored in pre_unpatch, the allocation freed in post_unpatch. Version 1 does
 * not support migration: it never looks at a previous patch's state.
 * console_loglevel lives in the target library test_klp_console (the kernel's is in vmlinux);
 * the patch reaches that static variable by name with GRAFT_REF. */
#include <stdlib.h>

#include <graft/graft.h>

#define CONSOLE_LOGLEVEL_STATE 1
/* Version 1 does not support migration. */
#define CONSOLE_LOGLEVEL_STATE_VERSION 1
#define CONSOLE_LOGLEVEL_MOTORMOUTH 15

#define pr_info(fmt, ...) graft_log("test_klp_state: " fmt, ##__VA_ARGS__)

static int *console_loglevel;
GRAFT_REF("test_klp_console", "console_loglevel", 0, console_loglevel);

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

static struct graft_patch patch;

static int allocate_loglevel_state(void) {
    struct graft_state *loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return -22; /* -EINVAL */
    loglevel_state->data = calloc(1, sizeof(*console_loglevel));
    if (!loglevel_state->data) return -12; /* -ENOMEM */
    pr_info("%s: allocating space to store console_loglevel", __func__);
    return 0;
}

static void fix_console_loglevel(void) {
    struct graft_state *loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return;
    pr_info("%s: fixing console_loglevel", __func__);
    *(int *)loglevel_state->data = *console_loglevel;
    *console_loglevel = CONSOLE_LOGLEVEL_MOTORMOUTH;
}

static void restore_console_loglevel(void) {
    struct graft_state *loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return;
    pr_info("%s: restoring console_loglevel", __func__);
    *console_loglevel = *(int *)loglevel_state->data;
}

static void free_loglevel_state(void) {
    struct graft_state *loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return;
    pr_info("%s: freeing space for the stored console_loglevel", __func__);
    free(loglevel_state->data);
}

/* Executed on object patching (ie, patch enablement) */
static int pre_patch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    return allocate_loglevel_state();
}

static void post_patch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    fix_console_loglevel();
}

/* Executed on object unpatching (ie, patch disablement) */
static void pre_unpatch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    restore_console_loglevel();
}

static void post_unpatch_callback(struct graft_object *obj) {
    callback_info(__func__, obj);
    free_loglevel_state();
}

static struct graft_func no_funcs[] = {{0}};

static struct graft_object objs[] = {
    {
        NULL, /* main */
        no_funcs,
        {pre_patch_callback, post_patch_callback, pre_unpatch_callback, post_unpatch_callback},
    },
    {0},
};

static struct graft_state states[] = {{CONSOLE_LOGLEVEL_STATE, CONSOLE_LOGLEVEL_STATE_VERSION, NULL}, {0}};

static struct graft_patch patch = {"test_klp_state", objs, states, true};
GRAFT_PATCH(patch);
