/* deny_wx_fix: value() returns 2; every callback of the main object prints its name, so the test
 * sees their order (tests/scenarios/disable_rollback/disable_rollback_test.cpp). */
#include <graft/graft.h>
#include <stdio.h>

static int value_v2(void) { return 2; }

static void say(const char *what) {
    printf("callback %s\n", what);
    fflush(stdout);
}
static int pre_patch(struct graft_object *o) {
    (void)o;
    say("pre_patch");
    return 0;
}
static void post_patch(struct graft_object *o) {
    (void)o;
    say("post_patch");
}
static void pre_unpatch(struct graft_object *o) {
    (void)o;
    say("pre_unpatch");
}
static void post_unpatch(struct graft_object *o) {
    (void)o;
    say("post_unpatch");
}

static struct graft_func funcs[] = {{"value", (void *)value_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {pre_patch, post_patch, pre_unpatch, post_unpatch}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
