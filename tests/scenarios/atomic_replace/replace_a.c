/* replace_a: f1() returns 1. */
#include <graft/graft.h>

static int f1_a(void) { return 1; }

static struct graft_func funcs[] = {{"f1", (void *)f1_a, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
