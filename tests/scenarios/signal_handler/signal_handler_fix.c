/* signal_handler_fix: version 2 of compute() and mix(), patched together:
 * compute(x) = mix(x) + 2 and mix(x) = 5x, so compute(x) = 5x + 2. The new compute() calls
 * mix() through its original entry, which runs the version of the calling thread. */
#include <graft/graft.h>

static long (*mix_entry)(long);
GRAFT_REF(NULL, "mix", 0, mix_entry);

static long mix_v2(long x) { return 5 * x; }
static long compute_v2(long x) { return mix_entry(x) + 2; }

static struct graft_func funcs[] = {
    {"compute", (void *)compute_v2, 0}, {"mix", (void *)mix_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
