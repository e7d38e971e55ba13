/* ordinary_replace_c: a cumulative patch (replace) that only changes read_counter() (43): once its
 * transition completes, every function the patches it replaces changed and it does not name
 * (scale, zlibVersion, adler32, abs, the libcrypto ones) runs its original code again, through
 * the nops graft adds for them. */
#include <graft/graft.h>
#include <stddef.h>

static int read_counter_v3(void) { return 43; }

static struct graft_func main_funcs[] = {{"read_counter", (void *)read_counter_v3, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, true};
GRAFT_PATCH(patch);
