/* wrong_versions: many threads call outer(), which calls inner(); one patch replaces both.
 * By the consistency model a thread never switches while outer() is on its stack, so the
 * version of inner() it sees must always be the version of the outer() that called it. Each
 * version of outer() counts the calls where inner() answered another version ("mixed").
 * Callers also check that outer() answers the version its inner() reported.
 *
 * stdin commands:  tick  -> "outer N" (outer() on the main thread: 1 or 2)
 *                  stats -> "stats calls=N v1=N v2=N mixed=N"
 *                  quit */
#include <pthread.h>
#include <stdatomic.h>
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

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        int v = outer();
        atomic_fetch_add(&calls, 1);
        if (v == 1) atomic_fetch_add(&seen_v1, 1);
        else if (v == 2) atomic_fetch_add(&seen_v2, 1);
        else atomic_fetch_add(&mixed, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 8;
    pthread_t t;
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "tick", 4)) {
            printf("outer %d\n", outer());
        } else if (!strncmp(line, "stats", 5)) {
            printf("stats calls=%ld v1=%ld v2=%ld mixed=%ld\n", atomic_load(&calls), atomic_load(&seen_v1),
                   atomic_load(&seen_v2), atomic_load(&mixed));
        }
        fflush(stdout);
    }
    return 0;
}
