/* test_klp_shadow_keep: attaches a shadow variable to shadow_parent of the target library
 * test_klp_shadow_api in its post_patch callback, and never frees it: shadow variables are
 * global, not per patch, so the variable outlives the patch's disable and unload
 * (tests/scenarios/klp/klp_shadow_vars_test.cpp). The text is copied into the variable: the patch's
 * own memory goes away with it. */
#include <string.h>

#include <graft/graft.h>

#define KEEP_ID 0x4b4550UL

static int *shadow_parent;
GRAFT_REF("test_klp_shadow_api", "shadow_parent", 0, shadow_parent);

static int copy_text(void *obj, void *shadow_data, void *ctor_data) {
    (void)obj;
    strcpy(shadow_data, ctor_data);
    return 0;
}

static void post_patch(struct graft_object *obj) {
    static const char text[] = "kept by test_klp_shadow_keep";
    char *data = graft_shadow_alloc(shadow_parent, KEEP_ID, sizeof text, copy_text, (void *)text);
    graft_log("test_klp_shadow_keep: %s: %s", obj->name, data ? data : "allocation failed");
}

static struct graft_func no_funcs[] = {{0}};
static struct graft_object objs[] = {{"test_klp_shadow_api", no_funcs, {.post_patch = post_patch}}, {0}};
static struct graft_patch patch = {"test_klp_shadow_keep", objs, NULL, false};
GRAFT_PATCH(patch);
