/* test_klp_shadow_api: the shadow variable cases the kernel's selftest does not log
 * (tests/scenarios/klp_shadow_vars_test.cpp): each exported function runs one case in the
 * process and returns what it saw, for the host's "call test_klp_shadow_api FUNC".
 * shadow_parent is the object the patch test_klp_shadow_keep attaches a variable to. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <graft/graft.h>

#define KEEP_ID 0x4b4550UL

int shadow_parent[4];

static char result[256];

static int ctor_ok(void *obj, void *shadow_data, void *ctor_data) {
    (void)obj;
    *(int *)shadow_data = *(int *)ctor_data;
    return 0;
}

static int ctor_calls;
static int ctor_fails(void *obj, void *shadow_data, void *ctor_data) {
    (void)obj;
    (void)shadow_data;
    (void)ctor_data;
    ctor_calls++;
    return -ENOMEM;
}

/* graft_shadow_alloc of an existing <obj, id>: NULL (the agent logs "Duplicate shadow
 * variable"), the first variable untouched, its constructor not run again. */
const char *duplicate_alloc(void) {
    static int obj;
    int one = 1, two = 2;
    int *first = graft_shadow_alloc(&obj, 0x2a, sizeof(int), ctor_ok, &one);
    int *second = graft_shadow_alloc(&obj, 0x2a, sizeof(int), ctor_ok, &two);
    int *now = graft_shadow_get(&obj, 0x2a);
    snprintf(result, sizeof result, "obj=%p first=%s second=%s value=%d", (void *)&obj,
             first ? "data" : "NULL", second ? "data" : "NULL", now == first && now ? *now : -1);
    graft_shadow_free(&obj, 0x2a, NULL);
    return result;
}

/* A failing constructor: NULL, the agent logs "Failed to construct shadow variable", and
 * nothing was added (get finds nothing; get_or_alloc with a working constructor then
 * allocates a fresh variable). */
const char *failing_ctor(void) {
    static int obj;
    int three = 3;
    ctor_calls = 0;
    void *alloc = graft_shadow_alloc(&obj, 0x2b, sizeof(int), ctor_fails, NULL);
    void *got = graft_shadow_get(&obj, 0x2b);
    void *goa = graft_shadow_get_or_alloc(&obj, 0x2b, sizeof(int), ctor_fails, NULL);
    int *later = graft_shadow_get_or_alloc(&obj, 0x2b, sizeof(int), ctor_ok, &three);
    snprintf(result, sizeof result, "obj=%p alloc=%s get=%s get_or_alloc=%s ctor_calls=%d later=%d",
             (void *)&obj, alloc ? "data" : "NULL", got ? "data" : "NULL", goa ? "data" : "NULL", ctor_calls,
             later ? *later : -1);
    graft_shadow_free(&obj, 0x2b, NULL);
    return result;
}

/* What test_klp_shadow_keep attached to shadow_parent (a string), or "none". */
const char *read_kept(void) {
    const char *kept = graft_shadow_get(shadow_parent, KEEP_ID);
    snprintf(result, sizeof result, "%s", kept ? kept : "none");
    return result;
}

/* Frees it (the owner of a shadow variable frees it, not the agent). */
const char *free_kept(void) {
    graft_shadow_free(shadow_parent, KEEP_ID, NULL);
    return read_kept();
}
