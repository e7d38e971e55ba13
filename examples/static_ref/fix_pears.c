/* fix_pears: replaces pears.c's static discount() (the 2nd "discount" of the program) with a
 * version that divides by 100. The new function reads pears.c's static `rate` (the 2nd "rate")
 * through a GRAFT_REF: the patch cannot link against a static variable. */
#include <graft/graft.h>

static long *pear_rate; /* set by the agent before the patch is enabled */
GRAFT_REF(NULL, "rate", 2, pear_rate);

static long discount_v2(long cents) { return cents * *pear_rate / 100; }

static void fixed(struct graft_object *obj) {
    (void)obj;
    graft_log("fix_pears: pears now %ld%% off", *pear_rate);
}

static struct graft_func funcs[] = {
    {"discount", (void *)discount_v2, 2}, /* old_sympos 2: pears.c's discount() */
    {0},
};
static struct graft_object objs[] = {
    {NULL /* the main executable */, funcs, {.post_patch = fixed}},
    {0},
};
static struct graft_patch patch = {"fix_pears", objs, NULL, false};
GRAFT_PATCH(patch);
