/* exec_fix: f() of exec_host returns 1. */
#include <graft/graft.h>

static int f_v2(void) { return 1; }

static struct graft_func funcs[] = {{"f", (void *)f_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
