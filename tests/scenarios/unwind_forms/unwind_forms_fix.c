/* unwind_forms_fix: replaces the three functions the threads of unwind_forms sleep under. The
 * new versions are never called: the test only watches the transition. */
#include <graft/graft.h>

static void busy_plain_v2(void) {}
static void busy_fp_v2(void) {}
static void busy_sig_v2(void) {}

static struct graft_func funcs[] = {{"busy_plain", (void *)busy_plain_v2, 0},
                                    {"busy_fp", (void *)busy_fp_v2, 0},
                                    {"busy_sig", (void *)busy_sig_v2, 0},
                                    {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
