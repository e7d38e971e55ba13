/* test_klp_state2 (kernel: test_modules/test_klp_state2.c): like test_klp_state, but state 1 at
 * version 2, which supports migration: with a previous patch's state (graft_get_prev_state) it
 * takes over the saved console_loglevel instead of allocating and changing it again, and on a
 * reversed transition it hands the change back to the old patch.
 * Built twice (tests/scenarios/klp/klp_h2.cmake): with STATE3=1 it is test_klp_state3, the kernel's
 * test_klp_state3.c (`#include "test_klp_state2.c"`): the same code under another name. */
#include <stdlib.h>

#include <graft/graft.h>

#if STATE3
#define STATE_PATCH_NAME "test_klp_state3"
#else
#define STATE_PATCH_NAME "test_klp_state2"
#endif

#define CONSOLE_LOGLEVEL_STATE 1
/* Version 2 supports migration. */
#define CONSOLE_LOGLEVEL_STATE_VERSION 2
#define CONSOLE_LOGLEVEL_MOTORMOUTH 15

#define pr_info(fmt, ...) graft_log(STATE_PATCH_NAME ": " fmt, ##__VA_ARGS__)

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
    struct graft_state *loglevel_state, *prev_loglevel_state;

    prev_loglevel_state = graft_get_prev_state(CONSOLE_LOGLEVEL_STATE);
    if (prev_loglevel_state) {
        pr_info("%s: space to store console_loglevel already allocated", __func__);
        return 0;
    }
    loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return -22; /* -EINVAL */
    loglevel_state->data = calloc(1, sizeof(*console_loglevel));
    if (!loglevel_state->data) return -12; /* -ENOMEM */
    pr_info("%s: allocating space to store console_loglevel", __func__);
    return 0;
}

static void fix_console_loglevel(void) {
    struct graft_state *loglevel_state, *prev_loglevel_state;

    loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return;
    prev_loglevel_state = graft_get_prev_state(CONSOLE_LOGLEVEL_STATE);
    if (prev_loglevel_state) {
        pr_info("%s: taking over the console_loglevel change", __func__);
        loglevel_state->data = prev_loglevel_state->data;
        return;
    }
    pr_info("%s: fixing console_loglevel", __func__);
    *(int *)loglevel_state->data = *console_loglevel;
    *console_loglevel = CONSOLE_LOGLEVEL_MOTORMOUTH;
}

static void restore_console_loglevel(void) {
    struct graft_state *loglevel_state, *prev_loglevel_state;

    prev_loglevel_state = graft_get_prev_state(CONSOLE_LOGLEVEL_STATE);
    if (prev_loglevel_state) {
        pr_info("%s: passing the console_loglevel change back to the old livepatch", __func__);
        return;
    }
    loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
    if (!loglevel_state) return;
    pr_info("%s: restoring console_loglevel", __func__);
    *console_loglevel = *(int *)loglevel_state->data;
}

static void free_loglevel_state(void) {
    struct graft_state *loglevel_state, *prev_loglevel_state;

    prev_loglevel_state = graft_get_prev_state(CONSOLE_LOGLEVEL_STATE);
    if (prev_loglevel_state) {
        pr_info("%s: keeping space to store console_loglevel", __func__);
        return;
    }
    loglevel_state = graft_get_state(&patch, CONSOLE_LOGLEVEL_STATE);
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

static struct graft_patch patch = {STATE_PATCH_NAME, objs, states, true};
GRAFT_PATCH(patch);
