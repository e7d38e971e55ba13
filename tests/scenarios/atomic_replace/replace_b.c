/* replace_b: f2() returns 2. */
#include <graft/graft.h>

static int f2_b(void) { return 2; }

static struct graft_func funcs[] = {{"f2", (void *)f2_b, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
