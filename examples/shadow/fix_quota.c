/* fix_quota: at most 3 messages per session. The count lives in a shadow variable attached to
 * each struct session (the kernel's livepatch-shadow-fix1/fix2 idea): struct session keeps its
 * layout, and the new functions find a session's counter by its address.
 *
 * - Sessions opened before the patch have no counter: session_send_v2 creates it on first use
 *   (graft_shadow_get_or_alloc), so they count from the patch on.
 * - session_close_v2 frees the counter with the session.
 * - When the patch is disabled, post_unpatch frees the counters of the sessions still open
 *   (graft_shadow_free_all): the destructor is code of this patch, which is about to go. */
#include <graft/graft.h>
#include <stdio.h>
#include <stdlib.h>

struct session { /* the target's layout, unchanged */
    int id;
    char name[16];
};

#define SV_QUOTA 1 /* shadow variable id: any number this patch owns */
#define MAX_SENDS 3

struct quota {
    int sent;
    int limit;
};

/* Runs once per session, when its counter is created (under the shadow lock: keep it short). */
static int quota_ctor(void *obj, void *shadow_data, void *ctor_data) {
    (void)obj;
    struct quota *q = shadow_data; /* zero-filled */
    q->limit = *(int *)ctor_data;
    return 0;
}

static int freed; /* counters freed by graft_shadow_free_all (post_unpatch) */
static void quota_dtor(void *obj, void *shadow_data) {
    (void)obj;
    (void)shadow_data;
    freed++;
}

static int session_send_v2(struct session *s, const char *text, int quiet) {
    static int limit = MAX_SENDS;
    struct quota *q = graft_shadow_get_or_alloc(s, SV_QUOTA, sizeof *q, quota_ctor, &limit);
    if (q && q->sent >= q->limit) {
        if (!quiet) printf("session %d: limit reached\n", s->id);
        return -1;
    }
    if (q) q->sent++;
    if (!quiet) printf("session %d: sent %s\n", s->id, text);
    return 0;
}

static void session_close_v2(struct session *s, int quiet) {
    struct quota *q = graft_shadow_get(s, SV_QUOTA);
    if (!quiet) {
        if (q) printf("session %d closed after %d messages\n", s->id, q->sent);
        else printf("session %d closed\n", s->id);
    }
    graft_shadow_free(s, SV_QUOTA, NULL); /* before the session's memory is reused */
    free(s);
}

static void drop_counters(struct graft_object *obj) {
    (void)obj;
    freed = 0;
    graft_shadow_free_all(SV_QUOTA, quota_dtor);
    graft_log("fix_quota: freed the counters of %d open sessions", freed);
}

static struct graft_func funcs[] = {
    {"session_send", (void *)session_send_v2, 0},
    {"session_close", (void *)session_close_v2, 0},
    {0},
};
static struct graft_object objs[] = {
    {NULL, funcs, {.post_unpatch = drop_counters}},
    {0},
};
static struct graft_patch patch = {"fix_quota", objs, NULL, false};
GRAFT_PATCH(patch);
