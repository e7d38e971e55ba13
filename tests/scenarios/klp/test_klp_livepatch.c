/* test_klp_livepatch (kernel: test_modules/test_klp_livepatch.c): cmdline_proc_show() of the
 * main executable says it has been live patched. */
#include <graft/graft.h>

static const char *livepatch_cmdline_proc_show(void) {
    return "test_klp_livepatch: this has been live patched";
}

static struct graft_func funcs[] = {{"cmdline_proc_show", (void *)livepatch_cmdline_proc_show, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"test_klp_livepatch", objs, NULL, false};
GRAFT_PATCH(patch);
