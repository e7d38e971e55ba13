/* exec_target_fix: f() of exec_target returns 2. */
#include <graft/graft.h>

static int f_v2(void) { return 2; }

static struct graft_func funcs[] = {{"f", (void *)f_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
