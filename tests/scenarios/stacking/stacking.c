/* stacking: value() returns 0 unpatched; each stacking_* patch makes it return its own value.
 * Two workers call value() all the time: "spinner" in a tight loop, "sleeper" every 0.5 ms.
 * stdin: "get" prints "value M S1 S2": what value() returns to the main thread, then a value
 * each worker obtained after the command arrived; "quit" exits. Prints "ready" once started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int value_base;

__attribute__((noinline)) int value(void) { return value_base; }

struct seen {
    atomic_long seq;
    atomic_int last;
};
static struct seen seen[2];

static void *worker(void *arg) {
    long id = (long)arg;
    pthread_setname_np(pthread_self(), id ? "sleeper" : "spinner");
    for (;;) {
        int v = value();
        atomic_store(&seen[id].last, v);
        atomic_fetch_add(&seen[id].seq, 1);
        if (id) {
            struct timespec ts = {0, 500000};
            nanosleep(&ts, NULL);
        } else {
            sched_yield();
        }
    }
    return NULL;
}

int main(void) {
    pthread_t t;
    for (long i = 0; i < 2; i++) pthread_create(&t, NULL, worker, (void *)i);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4)) break;
        if (strncmp(line, "get", 3)) continue;
        int mine = value();
        int w[2];
        for (int i = 0; i < 2; i++) {
            /* A value obtained by a call that started after this command arrived. */
            long s0 = atomic_load(&seen[i].seq);
            while (atomic_load(&seen[i].seq) < s0 + 2) sched_yield();
            w[i] = atomic_load(&seen[i].last);
        }
        printf("value %d %d %d\n", mine, w[0], w[1]);
        fflush(stdout);
    }
    _exit(0);
}
