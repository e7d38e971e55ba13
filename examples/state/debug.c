/* debug_vN: a cumulative patch (replace) that replaces handler_version() and, while it is in
 * place, raises the daemon's log_level to 7 (debug). The raised log level is a system state
 * (struct graft_state, id LOG_LEVEL_STATE): the memory holding the original level is state
 * data, handed from one patch to the next. The kernel's test_klp_state / test_klp_state2 pattern.
 *
 * Built twice from this file: `-DVERSION=1` gives debug_v1.so (state version 1), `-DVERSION=2`
 * debug_v2.so (state version 2). Every version knows how to take the state over from an older
 * one, and the agent refuses a patch that would take over a newer version than it declares:
 * loading debug_v1 while debug_v2 is in place fails with
 *   graft: Livepatch patch (debug_v1) is not compatible with the already installed livepatches.
 *
 * Callbacks (object main), in the roles the kernel documents:
 *   pre_patch    allocate the state data, unless the previous patch already has it (only
 *                pre_patch may fail)
 *   post_patch   take the data over from the previous patch, or make the change
 *   pre_unpatch  undo the change (runs only when this patch is disabled, never when replaced)
 *   post_unpatch free the data, unless the previous patch still owns it (the transition to this
 *                patch was reversed) */
#include <graft/graft.h>
#include <stdlib.h>

#ifndef VERSION
#define VERSION 1
#endif
#define STR_(x) #x
#define STR(x) STR_(x)
#define NAME "debug_v" STR(VERSION)

#define LOG_LEVEL_STATE 1 /* state id: the same in every version */
#define LOG_LEVEL_DEBUG 7

static volatile int *log_level;
GRAFT_REF(NULL, "log_level", 0, log_level);

static struct graft_patch patch;

static int allocate_state(struct graft_object *obj) {
    (void)obj;
    if (graft_get_prev_state(LOG_LEVEL_STATE)) {
        graft_log(NAME ": space to store log_level already allocated");
        return 0;
    }
    struct graft_state *state = graft_get_state(&patch, LOG_LEVEL_STATE);
    if (!state) return -1;
    state->data = malloc(sizeof(int));
    if (!state->data) return -1;
    graft_log(NAME ": allocating space to store log_level");
    return 0;
}

static void raise_log_level(struct graft_object *obj) {
    (void)obj;
    struct graft_state *state = graft_get_state(&patch, LOG_LEVEL_STATE);
    struct graft_state *prev = graft_get_prev_state(LOG_LEVEL_STATE);
    if (prev) {
        /* log_level is raised already: saving it now would save 7. Take over what the previous
         * patch saved. */
        graft_log(NAME ": taking over the log_level change");
        state->data = prev->data;
        return;
    }
    *(int *)state->data = *log_level;
    *log_level = LOG_LEVEL_DEBUG;
    graft_log(NAME ": raising log_level %d -> %d", *(int *)state->data, LOG_LEVEL_DEBUG);
}

static void restore_log_level(struct graft_object *obj) {
    (void)obj;
    struct graft_state *state = graft_get_state(&patch, LOG_LEVEL_STATE);
    *log_level = *(int *)state->data;
    graft_log(NAME ": restoring log_level %d", *log_level);
}

static void free_state(struct graft_object *obj) {
    (void)obj;
    if (graft_get_prev_state(LOG_LEVEL_STATE)) {
        graft_log(NAME ": keeping space to store log_level");
        return;
    }
    struct graft_state *state = graft_get_state(&patch, LOG_LEVEL_STATE);
    free(state->data);
    state->data = NULL;
    graft_log(NAME ": freeing space for the stored log_level");
}

static const char *handler_version_vN(void) { return "v" STR(VERSION); }

static struct graft_func funcs[] = {{"handler_version", (void *)handler_version_vN, 0}, {0}};
static struct graft_object objs[] = {
    {NULL, funcs, {allocate_state, raise_log_level, restore_log_level, free_state}},
    {0},
};
static struct graft_state states[] = {{LOG_LEVEL_STATE, VERSION, NULL}, {0}};
static struct graft_patch patch = {NAME, objs, states, true /* replace: cumulative */};
GRAFT_PATCH(patch);
