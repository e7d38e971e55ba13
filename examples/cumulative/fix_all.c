/* fix_all (release 3): a cumulative patch. It carries every fix so far (fix_a's add, fix_b's
 * sub) and a new one (mul), and sets replace: once its transition completes, the patches loaded
 * before it are disabled and replaced as a whole (their callbacks do not run), `graft list` shows
 * only fix_all, and the older patches can be unloaded. A function an older patch changed but
 * this one does not name would go back to its original code: a cumulative patch must carry
 * every fix it keeps. */
#include <graft/graft.h>

static long add_v2(long a, long b) { return a + b; }
static long sub_v2(long a, long b) { return a - b; }
static long mul_v2(long a, long b) { return a * b; }

static struct graft_func funcs[] = {
    {"add", (void *)add_v2, 0},
    {"sub", (void *)sub_v2, 0},
    {"mul", (void *)mul_v2, 0},
    {0},
};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"fix_all", objs, NULL, true /* replace */};
GRAFT_PATCH(patch);
