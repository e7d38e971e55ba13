/* no_disturbance_fix: work() returns 2. */
#include <graft/graft.h>

static int work_v2(void) { return 2; }

static struct graft_func funcs[] = {{"work", (void *)work_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
