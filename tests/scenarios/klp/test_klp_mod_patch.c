/* test_klp_mod_patch (kernel: selftests/livepatch/test_modules/test_klp_mod_patch.c): replaces
 * test_klp_mod_target_show() of the shared object test_klp_mod_target, whether that object is
 * loaded before the patch or after it. */
#include <graft/graft.h>

static const char *livepatch_mod_target_show(void) {
    return "test_klp_mod_patch: this has been live patched";
}

static struct graft_func funcs[] = {{"test_klp_mod_target_show", (void *)livepatch_mod_target_show, 0}, {0}};
static struct graft_object objs[] = {{"test_klp_mod_target", funcs, {0}}, {0}};
static struct graft_patch patch = {"test_klp_mod_patch", objs, NULL, false};
GRAFT_PATCH(patch);
