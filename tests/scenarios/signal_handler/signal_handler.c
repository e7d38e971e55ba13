/* signal_handler: a SIGUSR1 handler calls compute(), a patched function that calls mix(), also
 * patched (both are replaced by one patch). A hammer thread sends SIGUSR1 in a tight loop to
 * threads that call compute() themselves (so the handler often interrupts compute()) and to a
 * thread that only sleeps in sigsuspend(). Every result must be that of one version:
 *   version 1: compute(x) = mix(x) + 1 = 3x + 1      version 2: compute(x) = 5x + 2
 * anything else (3x + 2, 5x + 1) means the thread mixed versions inside one call.
 *
 * stdin commands:  tick  -> "compute N" (compute(7) on the main thread: 22 or 37)
 *                  stats -> "stats handled=N h_v1=N h_v2=N h_bad=N loop_v1=N loop_v2=N loop_bad=N sent=N"
 *                  quit */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile long mix_factor = 3;
volatile long compute_add = 1;

__attribute__((noinline)) long mix(long x) { return mix_factor * x; }
__attribute__((noinline)) long compute(long x) { return mix(x) + compute_add; }

atomic_long handled, h_v1, h_v2, h_bad, loop_v1, loop_v2, loop_bad, sent;
static volatile sig_atomic_t hammer_on = 1;

static int classify(long x, long r, atomic_long *v1, atomic_long *v2, atomic_long *bad) {
    if (r == 3 * x + 1) atomic_fetch_add(v1, 1);
    else if (r == 5 * x + 2) atomic_fetch_add(v2, 1);
    else {
        atomic_fetch_add(bad, 1);
        return 0;
    }
    return 1;
}

static void on_usr1(int sig) {
    (void)sig;
    int saved = errno;
    static _Thread_local long x;
    x = (x + 1) % 1000;
    classify(x, compute(x), &h_v1, &h_v2, &h_bad);
    atomic_fetch_add(&handled, 1);
    errno = saved;
}

static void *looper(void *arg) {
    (void)arg;
    for (long x = 0;; x = (x + 1) % 100000) classify(x, compute(x), &loop_v1, &loop_v2, &loop_bad);
    return NULL;
}

static void *idler(void *arg) {
    (void)arg;
    sigset_t none;
    sigemptyset(&none);
    for (;;) sigsuspend(&none);
    return NULL;
}

#define TARGETS 3
static pthread_t targets[TARGETS];

static void *hammer(void *arg) {
    (void)arg;
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &usr1, NULL);
    for (unsigned i = 0; hammer_on; i++) {
        if (pthread_kill(targets[i % TARGETS], SIGUSR1) == 0) atomic_fetch_add(&sent, 1);
    }
    return NULL;
}

int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    /* pthread_kill directs every SIGUSR1 at one of the targets: the main thread gets none. */
    pthread_create(&targets[0], NULL, looper, NULL);
    pthread_create(&targets[1], NULL, looper, NULL);
    pthread_create(&targets[2], NULL, idler, NULL);
    for (int i = 0; i < TARGETS; i++) pthread_setname_np(targets[i], i < 2 ? "looper" : "idler");
    pthread_t h;
    pthread_create(&h, NULL, hammer, NULL);
    pthread_setname_np(h, "hammer");
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "tick", 4)) {
            printf("compute %ld\n", compute(7));
        } else if (!strncmp(line, "stats", 5)) {
            printf("stats handled=%ld h_v1=%ld h_v2=%ld h_bad=%ld loop_v1=%ld loop_v2=%ld loop_bad=%ld sent=%ld\n",
                   atomic_load(&handled), atomic_load(&h_v1), atomic_load(&h_v2), atomic_load(&h_bad),
                   atomic_load(&loop_v1), atomic_load(&loop_v2), atomic_load(&loop_bad), atomic_load(&sent));
        }
        fflush(stdout);
    }
    hammer_on = 0;
    pthread_join(h, NULL);
    return 0;
}
