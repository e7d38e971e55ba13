/* test_klp_sysfs_replace0 / test_klp_sysfs_replace1: the kernel's test_klp_atomic_replace with
 * its `replace` parameter 0 or 1 (built twice, DEFINES REPLACE=0/1: a patch's descriptor is
 * static data, not a parameter). meminfo_proc_show() of the main executable says it has been
 * live patched (tests/scenarios/klp/klp_sysfs_test.cpp). */
#include <graft/graft.h>

#if REPLACE
#define PATCH_NAME "test_klp_sysfs_replace1"
#else
#define PATCH_NAME "test_klp_sysfs_replace0"
#endif

static const char *livepatch_meminfo_proc_show(void) {
    return PATCH_NAME ": this has been live patched";
}

static struct graft_func funcs[] = {{"meminfo_proc_show", (void *)livepatch_meminfo_proc_show, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {PATCH_NAME, objs, NULL, REPLACE};
GRAFT_PATCH(patch);
