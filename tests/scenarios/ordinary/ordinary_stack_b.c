/* ordinary_stack_b: stacked on ordinary_fix over the same rewritten entries: scale() returns
 * 3x + 3 and libz's zlibVersion() "graft-b" (the top of each function's stack wins). */
#include <graft/graft.h>
#include <stddef.h>

static int scale_v3(int x) { return x * 3 + 3; }
static const char *zlib_version_v3(void) { return "graft-b"; }

static struct graft_func main_funcs[] = {{"scale", (void *)scale_v3, 0}, {0}};
static struct graft_func zlib_funcs[] = {{"zlibVersion", (void *)zlib_version_v3, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"libz.so.1", zlib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
