/* wrong_versions: many threads call outer(), which calls inner(); one patch replaces both.
 * By the consistency model a thread never switches while outer() is on its stack, so the
 * version of inner() it sees must always be the version of the outer() that called it. Each
 * version of outer() counts the calls where inner() answered another version ("mixed").
 * Callers also check that outer() answers the version its inner() reported.
 *
 * park() exists to hold a transition open both ways: with one thread blocked in the old park()
 * and one in the new one, a patch that replaces it can complete neither its patching nor its
 * unpatching transition, so every `graft disable` / `graft enable` reverses a live transition.
 *
 * argv[2] "churn": the workers are short-lived instead, each created through
 * dlsym(RTLD_DEFAULT, "pthread_create") by the one before it as it ends (in a process graft
 * attached to, the C library's own: no birth hook), and each sleeps in a system call before its
 * first call and between its calls: graft's worker finds threads blocked without graft state and
 * offers them slots while they wake up, take the offer or claim their own.
 *
 * stdin commands:  tick   -> "outer N" (outer() on the main thread: 1 or 2)
 *                  stats  -> "stats calls=N v1=N v2=N mixed=N"
 *                  park   -> "parked" (one more thread now blocks in park())
 *                  unpark -> "unparked" (every parked thread left park() and ended)
 *                  quit */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile int inner_version = 1;
atomic_long mixed;  /* also counted by the patch's outer() (GRAFT_REF) */
atomic_long calls, seen_v1, seen_v2;

__attribute__((noinline)) int inner(void) { return inner_version; }

__attribute__((noinline)) int outer(void) {
    int v = inner();
    if (v != 1) atomic_fetch_add(&mixed, 1);
    return 1;
}

int park_pipe[2]; /* also read by the patch's park() (GRAFT_REF) */
static pthread_t parkers[8];
static int nparked;

__attribute__((noinline)) int park(void) {
    char c;
    return (int)read(park_pipe[0], &c, 1);
}

static void *parked(void *arg) {
    (void)arg;
    park();
    return NULL;
}

static void count_call(int v);

static void *worker(void *arg) {
    (void)arg;
    for (;;) count_call(outer());
    return NULL;
}

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
static create_fn dl_create;

static void count_call(int v) {
    atomic_fetch_add(&calls, 1);
    if (v == 1) atomic_fetch_add(&seen_v1, 1);
    else if (v == 2) atomic_fetch_add(&seen_v2, 1);
    else atomic_fetch_add(&mixed, 1);
}

/* A few hundred calls over about 20 ms, sleeping before the first and between the others, then a
 * successor in its place. */
static void *short_lived(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    usleep(50 + rand_r(&seed) % 400);
    for (int i = 0; i < 200; i++) {
        count_call(outer());
        if (rand_r(&seed) % 8 == 0) usleep(rand_r(&seed) % 300);
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    while (dl_create(&t, &a, short_lived, (void *)(uintptr_t)rand_r(&seed)) != 0) usleep(1000);
    pthread_attr_destroy(&a);
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 8;
    int churn = argc > 2 && strcmp(argv[2], "churn") == 0;
    pthread_t t;
    if (pipe(park_pipe) != 0) return 1;
    dl_create = (create_fn)dlsym(RTLD_DEFAULT, "pthread_create");
    if (!dl_create) return 1;
    for (int i = 0; i < workers; i++) {
        if (!churn) {
            pthread_create(&t, NULL, worker, NULL);
            continue;
        }
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        dl_create(&t, &a, short_lived, (void *)(uintptr_t)(i + 1));
        pthread_attr_destroy(&a);
    }
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "tick", 4)) {
            printf("outer %d\n", outer());
        } else if (!strcmp(line, "park") && nparked < 8) {
            pthread_create(&parkers[nparked++], NULL, parked, NULL);
            /* Blocked in park() once its kernel stack shows the read: good enough for the test,
             * which only needs the thread there before the patch's transition starts. */
            usleep(100000);
            printf("parked\n");
        } else if (!strcmp(line, "unpark")) {
            for (int i = 0; i < nparked; i++)
                if (write(park_pipe[1], "x", 1) != 1) return 1;
            for (int i = 0; i < nparked; i++) pthread_join(parkers[i], NULL);
            nparked = 0;
            printf("unparked\n");
        } else if (!strncmp(line, "stats", 5)) {
            printf("stats calls=%ld v1=%ld v2=%ld mixed=%ld\n", atomic_load(&calls), atomic_load(&seen_v1),
                   atomic_load(&seen_v2), atomic_load(&mixed));
        }
        fflush(stdout);
    }
    return 0;
}
