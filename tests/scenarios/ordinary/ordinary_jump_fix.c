/* ordinary_jump_fix: new versions of the jump layout's functions (`graft flags target --entry
 * jump`): the program's scale() and ordinary_jumplib.so's jl_scale(). */
#include <graft/graft.h>

static int scale_v2(int x) { return x * 3 + 2; }
static int jl_scale_v2(int x) { return x * 5 + 2; }

static struct graft_func main_funcs[] = {{"scale", (void *)scale_v2, 0}, {0}};
static struct graft_func lib_funcs[] = {{"jl_scale", (void *)jl_scale_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"ordinary_jumplib.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
