/* The part of fix_leak's patch written by hand (graft diff --with): when the patch is disabled,
 * the log lines of the sessions still open are freed with their shadow variables, as the kernel's
 * samples/livepatch/livepatch-shadow-fix1.c frees its shadow variables when it is removed. The
 * count of log lines is the program's static `log_lines`, reached with GRAFT_REF. */
#include <graft/graft.h>
#include <stdlib.h>

static long *log_lines;
GRAFT_REF(NULL, "log_lines", 0, log_lines);

static void free_log(void *obj, void *data) {
    (void)obj;
    free(*(char **)data);
    (*log_lines)--;
}

void graft_diff_post_unpatch(struct graft_object *obj) {
    (void)obj;
    graft_shadow_free_all(1, free_log);
    graft_log("fix_leak: the log lines of the sessions still open are freed");
}
