/* klp_syscall_host: the hammering side of the ported test-syscall.sh (kernel:
 * test_klp-call_getpid, tests/scenarios/klp/klp_syscall_test.cpp). NTHREADS threads (argument,
 * default 8) call klp_getpid() — this process's getpid, the function test_klp_syscall patches —
 * in a loop, as fast as they can. Each thread writes its tid into klp_tids[] and counts itself
 * in npids before the loop starts; the patch's klp_getpid() clears the caller's entry and
 * decrements npids the first time a thread runs it (the kernel's klp_pids / npids), so npids
 * is the number of threads that have not yet run the new function.
 * stdin commands (each answered by one line starting with "ok " or "error "):
 *   log TEXT    graft_log("%s", TEXT): the selftest's "% command" lines
 *   remaining   waits (up to 60 s) until npids is 0, then logs and answers
 *               "Remaining not livepatched threads: N"
 *   npids       "ok npids: N" — npids now, without waiting
 *   calls       "ok calls: C" — the loop iterations so far, all threads together
 *   stop        stops and joins the threads (the kernel's test kills its processes)
 * Prints "ready PID" once every thread is in its loop. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

extern void graft_log(const char *fmt, ...) __attribute__((weak));

enum { kMaxThreads = 64 };

/* Reached by the patch through GRAFT_REF: not static so that nothing folds them. */
__attribute__((used)) pid_t klp_tids[kMaxThreads];
__attribute__((used)) int npids;

static volatile int stop_flag;
static int started;
static unsigned long calls[kMaxThreads];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

__attribute__((noinline)) long klp_getpid(void) { return syscall(SYS_getpid); }

static void *hammer(void *arg) {
    int i = (int)(long)arg;
    klp_tids[i] = (pid_t)syscall(SYS_gettid);
    __atomic_add_fetch(&npids, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&mu);
    started++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    while (!stop_flag) {
        if (klp_getpid() != getpid()) abort();
        __atomic_add_fetch(&calls[i], 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int remaining(void) {
    /* Waits for a state the agent and the patch produce: poll it, with a deadline. */
    struct timespec tick = {0, 1000000};
    for (int i = 0; i < 60000; i++) {
        if (__atomic_load_n(&npids, __ATOMIC_SEQ_CST) == 0) break;
        nanosleep(&tick, NULL);
    }
    return __atomic_load_n(&npids, __ATOMIC_SEQ_CST);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8;
    if (n < 1 || n > kMaxThreads) n = 8;
    pthread_t th[kMaxThreads];
    for (int i = 0; i < n; i++) pthread_create(&th[i], NULL, hammer, (void *)(long)i);
    pthread_mutex_lock(&mu);
    while (started < n) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    announce_ready();
    char line[512];
    int running = 1;
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "log ", 4)) {
            if (graft_log) graft_log("%s", line + 4);
            printf("ok log\n");
        } else if (!strcmp(line, "remaining")) {
            int r = remaining();
            if (graft_log) graft_log("test_klp_syscall: Remaining not livepatched threads: %d", r);
            printf("ok remaining: Remaining not livepatched threads: %d\n", r);
        } else if (!strcmp(line, "npids")) {
            printf("ok npids: %d\n", __atomic_load_n(&npids, __ATOMIC_SEQ_CST));
        } else if (!strcmp(line, "calls")) {
            unsigned long sum = 0;
            for (int i = 0; i < n; i++) sum += __atomic_load_n(&calls[i], __ATOMIC_RELAXED);
            printf("ok calls: %lu\n", sum);
        } else if (!strcmp(line, "stop")) {
            stop_flag = 1;
            for (int i = 0; running && i < n; i++) pthread_join(th[i], NULL);
            running = 0;
            printf("ok stop\n");
        } else {
            printf("error unknown command '%s'\n", line);
        }
    }
    stop_flag = 1;
    for (int i = 0; running && i < n; i++) pthread_join(th[i], NULL);
    return 0;
}
