/* objects_race: the race of the kernel's seed 004 (a module coming or going while patches are
 * enabled). a() is in the executable, b() in objects_race_lib.so; both return 0, and patches
 * race_p1..race_p3 make both return 1, 2, 3. One thread loads and unloads the library in a loop
 * (dlopen, dlclose) for ever; worker threads call a() and b() all the time. With no transition
 * in progress, a() and b() must return the same value: that of the newest enabled patch (the
 * top of each function's func_stack), whenever the library was loaded.
 *
 * The loader changes the library under a writer-preferring rwlock; callers of b() hold it for
 * reading, so b() is never called on an unmapped library.
 *
 * Each copy of the library that loads is compared at once, by the loader (right after dlopen and
 * right before dlclose) and by the workers: a() and b() must agree even during a transition,
 * because a thread sees both functions in its own patch state; only a thread switching between
 * the two calls sees them differ, and then the next pair agrees again. So a pair that differs,
 * repeated identically three times, is a copy whose b() func_stack is out of order with a()'s
 * (seed 004's race): counted in "stable mismatches". This catches a wrongly patched copy even
 * when it is unloaded again long before the test's next "check".
 *
 * stdin commands:
 *   check  the main thread waits until the library is loaded, then, holding the lock (so the
 *          library stays), calls a() and b() 1000 times:
 *          "check a=A b=B mismatches=N" (A, B: the last values; N: calls where a() != b())
 *   stats  "stats cycles=N mismatches=M" (completed dlopen/dlclose cycles; stable mismatches
 *          seen by the loader and the workers)
 *   quit
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

volatile int a_value = 0;
atomic_long cycles, worker_calls, stable_mismatches;
static pthread_rwlock_t lock;
static int (*b_fn)(void); /* set while the library is loaded, under the write lock */
static char lib_path[PATH_MAX];

__attribute__((noinline)) int a(void) { return a_value; }

/* Compares a() and b() of a loaded copy (see above). */
static void compare(int (*b)(void)) {
    int a0 = a(), b0 = b();
    if (a0 == b0) return;
    for (int i = 0; i < 2; i++)
        if (a() != a0 || b() != b0) return;
    atomic_fetch_add(&stable_mismatches, 1);
}

static void *loader(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "loader");
    for (;;) {
        pthread_rwlock_wrlock(&lock);
        void *h = dlopen(lib_path, RTLD_NOW);
        if (!h) {
            fprintf(stderr, "objects_race: %s\n", dlerror());
            exit(3);
        }
        b_fn = (int (*)(void))dlsym(h, "b");
        compare(b_fn);
        pthread_rwlock_unlock(&lock);
        /* Loaded for a moment, so that callers get the lock (sleeping, not yielding: a thread
         * waking from a sleep gets the CPU back soon, one that yields to busy workers does not). */
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        pthread_rwlock_wrlock(&lock);
        compare(b_fn);
        b_fn = NULL;
        dlclose(h);
        pthread_rwlock_unlock(&lock);
        atomic_fetch_add(&cycles, 1);
    }
    return NULL;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        /* Mostly a(): a worker preempted while it holds the lock would stall the loader. */
        long sum = 0;
        for (int i = 0; i < 64; i++) sum += a();
        pthread_rwlock_rdlock(&lock);
        if (b_fn) {
            sum += b_fn();
            compare(b_fn);
        }
        pthread_rwlock_unlock(&lock);
        atomic_fetch_add(&worker_calls, sum + 1);
    }
    return NULL;
}

static void check(void) {
    for (;;) {
        pthread_rwlock_rdlock(&lock);
        if (b_fn) break;
        pthread_rwlock_unlock(&lock);
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL); /* until the loader has loaded it again */
    }
    int va = 0, vb = 0;
    long mismatches = 0;
    for (int i = 0; i < 1000; i++) {
        va = a();
        vb = b_fn();
        mismatches += va != vb;
    }
    pthread_rwlock_unlock(&lock);
    printf("check a=%d b=%d mismatches=%ld\n", va, vb, mismatches);
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    sibling_path(lib_path, sizeof lib_path, "objects_race_lib.so");

    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock, &attr);

    pthread_t t;
    pthread_create(&t, NULL, loader, NULL);
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "check")) check();
        else if (!strcmp(line, "stats")) printf("stats cycles=%ld mismatches=%ld\n", atomic_load(&cycles), atomic_load(&stable_mismatches));
        fflush(stdout);
    }
    _exit(0);
}
