/* ordinary_refused: replaces one function whose entry graft must refuse to rewrite, chosen with
 * -DVICTIM=name (tests/scenarios/ordinary/ordinary_shapes.S). */
#include <graft/graft.h>

static int victim_v2(int x) { return x; }

#define STR2(x) #x
#define STR(x) STR2(x)
static struct graft_func funcs[] = {{STR(VICTIM), (void *)victim_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
