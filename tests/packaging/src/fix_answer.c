// The patch: answer() gives x + 2 instead of x + 1 (42 becomes 43 in ticker's output).
#include <graft/graft.h>

static int answer_v2(int x) {
    return x + 2;
}

static struct graft_func funcs[] = {{"answer", (void *)answer_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL /* the main executable */, funcs, {0}}, {0}};
/* name NULL: the file's basename (fix_answer, fix_answer_pinned) */
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
