/* handler_walk_fix: replaces the three functions the threads of handler_walk spin in and leaf(),
 * which one of them calls. Only leaf_v2 is ever called: the test watches the transition. */
#include <graft/graft.h>

static void busy_spin_v2(void) {}
static void busy_fp_spin_v2(void) {}
static void busy_call_spin_v2(void) {}
static unsigned long leaf_v2(unsigned long i) { return i * 2654435761u; }

static struct graft_func funcs[] = {
    {"busy_spin", (void *)busy_spin_v2, 0}, {"busy_fp_spin", (void *)busy_fp_spin_v2, 0},
    {"busy_call_spin", (void *)busy_call_spin_v2, 0}, {"leaf", (void *)leaf_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
