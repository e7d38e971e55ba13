/* The fix: price() v2 (here it marks its answers so the demo can count them: 1001). */
#include <graft/graft.h>
#include <unistd.h>

static long price_v2(long cents, long request) {
    (void)request;
    return cents + 1;
}

static struct graft_func funcs[] = {{"price", (void *)price_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"fix_rounding", objs, NULL, false};
GRAFT_PATCH(patch);
