/* fork_fix: f() returns 1. Like the original it first calls hold_point(), so that the test's
 * holder thread can be kept inside f() of either version (an unpatching transition then stays
 * pending too). */
#include <graft/graft.h>

static void (*hold_point)(void);
GRAFT_REF(NULL, "hold_point", 0, hold_point);

static int f_v2(void) {
    hold_point();
    return 1;
}

static struct graft_func funcs[] = {{"f", (void *)f_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
