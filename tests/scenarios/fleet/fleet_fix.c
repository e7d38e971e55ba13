/* fleet_fix: fleet_value() of libfleet.so returns 2; built with `--target` build a's file, so
 * it records that build's build-id, by which `graft load --all` picks processes. */
#include <graft/graft.h>

static int fleet_value_v2(void) { return 2; }

static struct graft_func funcs[] = {{"fleet_value", (void *)fleet_value_v2, 0}, {0}};
static struct graft_object objs[] = {{"libfleet.so", funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
