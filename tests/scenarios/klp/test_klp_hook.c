/* test_klp_hooked / test_klp_unhooked: patches for klp_hook_host's hooked_show() (whose entry
 * another tool has taken: the load must fail) and unhooked_show() (nobody's: it must load)
 * (tests/scenarios/klp/klp_entry_conflict_test.cpp). One source, built twice with HOOKED=1/0. */
#include <graft/graft.h>

#if HOOKED
#define PATCH_NAME "test_klp_hooked"
#define OLD_FUNC "hooked_show"
#else
#define PATCH_NAME "test_klp_unhooked"
#define OLD_FUNC "unhooked_show"
#endif

static const char *livepatch_show(void) { return PATCH_NAME ": this has been live patched"; }

static struct graft_func funcs[] = {{OLD_FUNC, (void *)livepatch_show, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {PATCH_NAME, objs, NULL, false};
GRAFT_PATCH(patch);
