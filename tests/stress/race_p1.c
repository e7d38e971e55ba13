/* race_p1: a() (main executable) and b() (objects_race_lib.so, which objects_race loads and
 * unloads in a loop) return 1. */
#include <graft/graft.h>

static int a_v1(void) { return 1; }
static int b_v1(void) { return 1; }

static struct graft_func main_funcs[] = {{"a", (void *)a_v1, 0}, {0}};
static struct graft_func lib_funcs[] = {{"b", (void *)b_v1, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"objects_race_lib.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
