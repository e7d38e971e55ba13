/* p_trans: f_trans() and libccord.so's f_ltrans() (a rewritten entry), f_lgtrans() and
 * f_ljtrans() (graft's two entry layouts) return x + 2. It also replaces blocker_fn() and hold_frame(): callcost has
 * one thread asleep inside blocker_fn() and one living inside hold_frame(), so this patch's
 * transition stays pending for as long as the driver wants (it is loaded with --no-wait and
 * reversed with `graft disable`). The new blocker_fn/hold_frame are never called. */
#include <stdint.h>
#include <graft/graft.h>

static uint64_t f_trans_v2(uint64_t x) { return x + 2; }
static void blocker_fn_v2(void) {}
static void hold_frame_v2(void) {}

static struct graft_func funcs[] = {{"f_trans", (void *)f_trans_v2, 0},
                                    {"blocker_fn", (void *)blocker_fn_v2, 0},
                                    {"hold_frame", (void *)hold_frame_v2, 0},
                                    {0}};
static struct graft_func lib_funcs[] = {{"f_ltrans", (void *)f_trans_v2, 0},
                                        {"f_lgtrans", (void *)f_trans_v2, 0},
                                        {"f_ljtrans", (void *)f_trans_v2, 0},
                                        {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {"libccord.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
