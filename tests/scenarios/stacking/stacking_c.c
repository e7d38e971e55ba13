/* stacking_c: value() returns 3 (tests/scenarios/stacking/stacking_test.cpp stacks a, b, c). */
#include <graft/graft.h>

static int value_c(void) { return 3; }

static struct graft_func funcs[] = {{"value", (void *)value_c, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
