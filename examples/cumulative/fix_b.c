/* fix_b (release 2): sub() subtracts in the right order. A plain patch, stacked on fix_a. */
#include <graft/graft.h>

static long sub_v2(long a, long b) { return a - b; }

static struct graft_func funcs[] = {{"sub", (void *)sub_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"fix_b", objs, NULL, false};
GRAFT_PATCH(patch);
