/* malformed_elf_fix: the good patch for malformed_elf: value() returns 2. The test also corrupts
 * copies of it. */
#include <graft/graft.h>

static int value_v2(void) {
    return 2;
}

static struct graft_func funcs[] = {{"value", (void *)value_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
