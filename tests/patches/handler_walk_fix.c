/* handler_walk_fix: replaces the two functions the threads of handler_walk spin in. The new
 * versions are never called: the test only watches the transition. */
#include <graft/graft.h>

static void busy_spin_v2(void) {}
static void busy_fp_spin_v2(void) {}

static struct graft_func funcs[] = {
    {"busy_spin", (void *)busy_spin_v2, 0}, {"busy_fp_spin", (void *)busy_fp_spin_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
