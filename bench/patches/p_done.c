/* p_done: f_done(), f_odone(), f_jdone() and libccord.so's f_lodone() (no patchable entry),
 * f_lgate() and f_ljump() (graft's two entry layouts) return x + 2
 * (callcost; measured once the transition completed). */
#include <stdint.h>
#include <graft/graft.h>

static uint64_t f_done_v2(uint64_t x) { return x + 2; }

static struct graft_func funcs[] = {{"f_done", (void *)f_done_v2, 0}, {"f_odone", (void *)f_done_v2, 0},
                                    {"f_jdone", (void *)f_done_v2, 0}, {0}};
static struct graft_func lib_funcs[] = {{"f_lodone", (void *)f_done_v2, 0},
                                        {"f_lgate", (void *)f_done_v2, 0},
                                        {"f_ljump", (void *)f_done_v2, 0},
                                        {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {"libccord.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
