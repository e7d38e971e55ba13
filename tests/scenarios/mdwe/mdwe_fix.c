/* mdwe_fix: greet() returns 2 and mdwe_lib.so's lib_value() 20. Built by the test with
 * -DMDWE_TEXTREL -fno-pic -mcmodel=large, its code holds absolute addresses that ld.so relocates
 * by writing the code (DT_TEXTREL), as in the patches `graft diff` makes. */
#include <graft/graft.h>

#ifdef MDWE_TEXTREL
static volatile int two = 2;
static int greet_v2(void) { return two; }
#else
static int greet_v2(void) { return 2; }
#endif
static int lib_value_v2(void) { return 20; }

static struct graft_func main_funcs[] = {{"greet", (void *)greet_v2, 0}, {0}};
static struct graft_func lib_funcs[] = {{"lib_value", (void *)lib_value_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, main_funcs, {0}}, {"mdwe_lib.so", lib_funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
