/* race_p2: a() (main executable) and b() (objects_race_lib.so, which objects_race loads and
 * unloads in a loop) return 2. */
#include <graft/graft.h>

static int a_v2(void) { return 2; }
static int b_v2(void) { return 2; }

static struct graft_func main_funcs[] = {{"a", (void *)a_v2, 0}, {0}};
static struct graft_func lib_funcs[] = {{"b", (void *)b_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"objects_race_lib.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
