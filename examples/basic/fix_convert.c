/* fix_convert: replaces celsius_to_fahrenheit() with a version that adds 32. The new function
 * has the old one's signature; the agent switches each thread of the server to it once that
 * thread is not inside the old one. */
#include <graft/graft.h>

static long celsius_to_fahrenheit_v2(long celsius) { return celsius * 9 / 5 + 32; }

static struct graft_func funcs[] = {
    {"celsius_to_fahrenheit", (void *)celsius_to_fahrenheit_v2, 0}, /* 0: the name is unique */
    {0},
};
static struct graft_object objs[] = {
    {NULL /* the main executable */, funcs, {0}},
    {0},
};
static struct graft_patch patch = {"fix_convert", objs, NULL, false};
GRAFT_PATCH(patch);
