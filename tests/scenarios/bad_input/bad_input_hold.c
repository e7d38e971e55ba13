/* bad_input_hold: replaces hold(); a thread kept inside the old hold() keeps its transition
 * pending. */
#include <graft/graft.h>
#include <stdio.h>

static void hold_v2(void) {
    printf("hold v2\n");
    fflush(stdout);
}

static struct graft_func funcs[] = {{"hold", (void *)hold_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
