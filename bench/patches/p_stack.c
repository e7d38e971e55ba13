/* p_stackK (built with -DLEVEL=K): f_stack() returns x + 10 + K. Loaded on top of each other, so
 * the top of f_stack's func_stack is always the last one loaded (callcost). */
#include <stdint.h>
#include <graft/graft.h>

#ifndef LEVEL
#error "build with -DLEVEL=K"
#endif

static uint64_t f_stack_v(uint64_t x) { return x + 10 + LEVEL; }

static struct graft_func funcs[] = {{"f_stack", (void *)f_stack_v, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
