/* tune: a patch whose callbacks change the program's state around the code change.
 *
 * Object main (always loaded):
 *   pre_patch    checks a precondition: refuses (non-zero) while the settings are locked; the
 *                load then fails and the process is left as it was
 *   post_patch   raises the global setting max_workers to 8 (the new code is in place)
 *   pre_unpatch  puts the old value back (the old code is about to return)
 *   post_unpatch logs
 * Object plugin.so (a shared library the program loads later, perhaps never): its callbacks run
 * when the patch is enabled or disabled if it is loaded then, else as it comes (dlopen, before
 * its constructors) and goes (dlclose); graft_object_state() says which. plugin_hello() is
 * replaced as well. */
#include <errno.h>
#include <graft/graft.h>

static volatile int *max_workers, *settings_locked;
GRAFT_REF(NULL, "max_workers", 0, max_workers);
GRAFT_REF(NULL, "settings_locked", 0, settings_locked);

static int saved_max_workers;

static const char *state_name(struct graft_object *obj) {
    switch (graft_object_state(obj)) {
    case GRAFT_OBJECT_LIVE: return "GRAFT_OBJECT_LIVE";
    case GRAFT_OBJECT_COMING: return "GRAFT_OBJECT_COMING";
    case GRAFT_OBJECT_GOING: return "GRAFT_OBJECT_GOING";
    }
    return "?";
}

static int main_pre_patch(struct graft_object *obj) {
    (void)obj;
    if (*settings_locked) {
        graft_log("tune: pre_patch main: settings are locked, refusing");
        return -EPERM; /* non-zero: the load fails */
    }
    graft_log("tune: pre_patch main: settings unlocked");
    return 0;
}
static void main_post_patch(struct graft_object *obj) {
    (void)obj;
    saved_max_workers = *max_workers;
    *max_workers = 8;
    graft_log("tune: post_patch main: max_workers %d -> 8", saved_max_workers);
}
static void main_pre_unpatch(struct graft_object *obj) {
    (void)obj;
    *max_workers = saved_max_workers;
    graft_log("tune: pre_unpatch main: max_workers back to %d", saved_max_workers);
}
static void main_post_unpatch(struct graft_object *obj) {
    (void)obj;
    graft_log("tune: post_unpatch main");
}

static int plugin_pre_patch(struct graft_object *obj) {
    graft_log("tune: pre_patch %s -> %s", obj->name, state_name(obj));
    return 0;
}
static void plugin_post_patch(struct graft_object *obj) {
    graft_log("tune: post_patch %s -> %s", obj->name, state_name(obj));
}
static void plugin_pre_unpatch(struct graft_object *obj) {
    graft_log("tune: pre_unpatch %s -> %s", obj->name, state_name(obj));
}
static void plugin_post_unpatch(struct graft_object *obj) {
    graft_log("tune: post_unpatch %s -> %s", obj->name, state_name(obj));
}

static const char *plugin_hello_v2(void) { return "hello from plugin v2"; }

static struct graft_func main_funcs[] = {{0}}; /* callbacks only: no function of main changes */
static struct graft_func plugin_funcs[] = {{"plugin_hello", (void *)plugin_hello_v2, 0}, {0}};
static struct graft_object objs[] = {
    {NULL, main_funcs, {main_pre_patch, main_post_patch, main_pre_unpatch, main_post_unpatch}},
    {"plugin.so", plugin_funcs, {plugin_pre_patch, plugin_post_patch, plugin_pre_unpatch, plugin_post_unpatch}},
    {0},
};
static struct graft_patch patch = {"tune", objs, NULL, false};
GRAFT_PATCH(patch);
