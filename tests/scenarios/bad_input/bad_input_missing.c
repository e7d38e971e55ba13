/* bad_input_missing: replaces value() (which exists) and no_such_function (which does not):
 * the whole patch must be refused, value() included. */
#include <graft/graft.h>

static int value_v2(void) { return 2; }
static int nothing(void) { return 0; }

static struct graft_func funcs[] = {
    {"value", (void *)value_v2, 0}, {"no_such_function", (void *)nothing, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
