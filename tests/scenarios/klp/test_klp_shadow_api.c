/* test_klp_shadow_api: the shadow variable cases the kernel's selftest does not log
 * (tests/scenarios/klp/klp_shadow_vars_test.cpp): each exported function runs one case in the
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

/* graft_shadow_get from a signal handler and from the interrupted thread itself while two
 * writer threads allocate and free variables in the same hash buckets. Even-indexed objects
 * keep one variable for the whole run: every lookup of one must find it with its constructor's
 * content (a lock-free unlink that loses a neighbour, or a freed node still linked, shows up
 * here). Odd-indexed objects' variables come and go: their lookups may find them or not, but
 * never another object's. (A variable being freed cannot be read by the caller afterwards: as
 * in the kernel, the returned pointer is the caller's to protect.) Counts violations. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>

#define SIG_ID 0x534947UL
/* Each signal waits for the main thread to be scheduled: on a loaded 2-CPU machine that was
 * ~140 signals/s, so 3000 could outlast the 30-s answer timeout. */
enum { kSigObjs = 8, kSignals = 1000 };
static int sig_objs[kSigObjs]; /* 4 bytes apart: neighbours share a bucket */
static int *sig_stable[kSigObjs];
static atomic_long sig_gets, sig_bad, sig_handled;
static atomic_int sig_stop;

static void check_all(void) {
    for (int i = 0; i < kSigObjs; i++) {
        int *d = graft_shadow_get(&sig_objs[i], SIG_ID);
        atomic_fetch_add(&sig_gets, 1);
        if (i % 2 == 0) {
            if (d != sig_stable[i] || *d != 1000 + i) atomic_fetch_add(&sig_bad, 1);
        } else {
            for (int j = 0; j < kSigObjs; j += 2)
                if (d && d == sig_stable[j]) atomic_fetch_add(&sig_bad, 1);
        }
    }
}

static void on_signal(int sig) {
    (void)sig;
    check_all();
    atomic_fetch_add(&sig_handled, 1);
}

static void *sig_writer(void *arg) {
    unsigned n = (unsigned)(long)arg;
    while (!atomic_load(&sig_stop)) {
        int i = 1 + 2 * (int)(n++ % (kSigObjs / 2)), v = 1000 + i;
        graft_shadow_get_or_alloc(&sig_objs[i], SIG_ID, sizeof(int), ctor_ok, &v);
        if (n % 2 == 0) graft_shadow_free(&sig_objs[i], SIG_ID, NULL);
    }
    return NULL;
}

static void *sig_sender(void *arg) {
    pthread_t target = *(pthread_t *)arg;
    for (int k = 0; k < kSignals; k++) {
        long before = atomic_load(&sig_handled);
        pthread_kill(target, SIGUSR2);
        while (atomic_load(&sig_handled) == before) sched_yield();
    }
    atomic_store(&sig_stop, 1);
    return NULL;
}

const char *signal_handler_get(void) {
    for (int i = 0; i < kSigObjs; i += 2) {
        int v = 1000 + i;
        sig_stable[i] = graft_shadow_alloc(&sig_objs[i], SIG_ID, sizeof(int), ctor_ok, &v);
    }
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &sa, &old);
    pthread_t self = pthread_self(), writers[2], sender;
    for (long w = 0; w < 2; w++) pthread_create(&writers[w], NULL, sig_writer, (void *)(w * 5));
    pthread_create(&sender, NULL, sig_sender, &self);
    while (!atomic_load(&sig_stop)) check_all();
    pthread_join(sender, NULL);
    for (int w = 0; w < 2; w++) pthread_join(writers[w], NULL);
    sigaction(SIGUSR2, &old, NULL);
    graft_shadow_free_all(SIG_ID, NULL);
    int left = 0;
    for (int i = 0; i < kSigObjs; i++) left += graft_shadow_get(&sig_objs[i], SIG_ID) != NULL;
    snprintf(result, sizeof result, "violations=%ld handled=%ld gets=%s left=%d", atomic_load(&sig_bad),
             atomic_load(&sig_handled), atomic_load(&sig_gets) > 100000 ? "many" : "few", left);
    return result;
}
