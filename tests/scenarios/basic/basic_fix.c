/* basic_fix: greet() returns 2. */
#include <graft/graft.h>

static int greet_v2(void) { return 2; }

static struct graft_func funcs[] = {{"greet", (void *)greet_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
