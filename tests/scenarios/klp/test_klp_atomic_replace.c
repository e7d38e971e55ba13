/* test_klp_atomic_replace (kernel: selftests/livepatch/test_modules/test_klp_atomic_replace.c):
 * meminfo_proc_show() of the main executable says it has been live patched. Built twice: REPLACE=1
 * is the kernel's replace=1 parameter (an atomic replace patch), under the same patch name. */
#include <graft/graft.h>

#ifndef REPLACE
#define REPLACE 0
#endif

static const char *livepatch_meminfo_proc_show(void) {
    return "test_klp_atomic_replace: this has been live patched";
}

static struct graft_func funcs[] = {{"meminfo_proc_show", (void *)livepatch_meminfo_proc_show, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"test_klp_atomic_replace", objs, NULL, REPLACE};
GRAFT_PATCH(patch);
