/* replace_r: a cumulative patch (replace = true) of replace_a and replace_b: f1() returns 10;
 * it does not patch f2(), which therefore returns to the original; holder_fn() gets a version
 * that does not wait, so a thread parked in the original keeps the transition pending. */
#include <graft/graft.h>

static int f1_r(void) { return 10; }
static int holder_fn_r(void) { return 0; }

static struct graft_func funcs[] = {{"f1", (void *)f1_r, 0}, {"holder_fn", (void *)holder_fn_r, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, true};
GRAFT_PATCH(patch);
