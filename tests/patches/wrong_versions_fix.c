/* wrong_versions_fix: version 2 of inner() and outer(), patched together. The new outer() calls
 * inner() through its original entry (the calling thread's version) and counts a mismatch. */
#include <graft/graft.h>
#include <stdatomic.h>

static int (*inner_entry)(void);
GRAFT_REF(NULL, "inner", 0, inner_entry);
static atomic_long *mixed;
GRAFT_REF(NULL, "mixed", 0, mixed);

static int inner_v2(void) { return 2; }

static int outer_v2(void) {
    int v = inner_entry();
    if (v != 2) atomic_fetch_add(mixed, 1);
    return 2;
}

static struct graft_func funcs[] = {{"outer", (void *)outer_v2, 0}, {"inner", (void *)inner_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
