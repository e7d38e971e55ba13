/* race_p3: a() (main executable) and b() (objects_race_lib.so, which objects_race loads and
 * unloads in a loop) return 3. */
#include <graft/graft.h>

static int a_v3(void) { return 3; }
static int b_v3(void) { return 3; }

static struct graft_func main_funcs[] = {{"a", (void *)a_v3, 0}, {0}};
static struct graft_func lib_funcs[] = {{"b", (void *)b_v3, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"objects_race_lib.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
