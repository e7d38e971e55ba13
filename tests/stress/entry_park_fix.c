/* entry_park_fix (tests/stress): scale() returns 3x + 2. */
#include <graft/graft.h>

static int scale_v2(int x) { return x * 3 + 2; }

static struct graft_func funcs[] = {{"scale", (void *)scale_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
