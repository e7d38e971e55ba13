/* nocfi_fix: value() returns 2 (tests/scenarios/no_network/no_network_test.cpp). */
#include <graft/graft.h>

static int value_v2(void) { return 2; }

static struct graft_func funcs[] = {{"value", (void *)value_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
