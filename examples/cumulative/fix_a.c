/* fix_a (release 1): add() no longer adds one. A plain, non-cumulative patch. */
#include <graft/graft.h>

static long add_v2(long a, long b) { return a + b; }

static struct graft_func funcs[] = {{"add", (void *)add_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"fix_a", objs, NULL, false};
GRAFT_PATCH(patch);
