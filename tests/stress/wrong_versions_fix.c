/* wrong_versions_fix: version 2 of inner() and outer(), patched together. The new outer() calls
 * inner() through its original entry (the calling thread's version) and counts a mismatch.
 * Built with -DWITH_PARK (wrong_versions_park_fix) it also replaces park(), so that threads
 * blocked in either version keep the transition open. */
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

#ifdef WITH_PARK
#include <unistd.h>
static int *park_pipe;
GRAFT_REF(NULL, "park_pipe", 0, park_pipe);
static int park_v2(void) {
    char c;
    return (int)read(park_pipe[0], &c, 1);
}
#endif

static struct graft_func funcs[] = {{"outer", (void *)outer_v2, 0},
                                    {"inner", (void *)inner_v2, 0},
#ifdef WITH_PARK
                                    {"park", (void *)park_v2, 0},
#endif
                                    {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
