/* bad_input_twin3: replaces value() and the static twin() at symbol position 3
 * (0: must be unique, which it is not; 2: the second one, bad_input_twin.c's; 3: none). */
#include <graft/graft.h>

static int value_v2(void) { return 2; }
static int twin_v2(void) { return 200; }

static struct graft_func funcs[] = {
    {"value", (void *)value_v2, 0}, {"twin", (void *)twin_v2, 3}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
