/* p_threads: patched_fn() returns x + 2 (threads: transition time and disturbance). None of the
 * blocked threads has patched_fn() on its stack, so every one of them may switch at once. */
#include <stdint.h>
#include <graft/graft.h>

static uint64_t patched_fn_v2(uint64_t x) { return x + 2; }

static struct graft_func funcs[] = {{"patched_fn", (void *)patched_fn_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
