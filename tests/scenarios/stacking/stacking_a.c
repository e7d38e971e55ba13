/* stacking_a: value() returns 1 (tests/scenarios/stacking/stacking_test.cpp stacks a, b, c). */
#include <graft/graft.h>

static int value_a(void) { return 1; }

static struct graft_func funcs[] = {{"value", (void *)value_a, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
