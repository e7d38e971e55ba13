/* consistency: one "round" is a call of producer(), which obtains a value (next_value()),
 * stores it in a shared record and calls consumer(), which calls printer(). The patch
 * consistency_v2 changes the record's layout for all three together (see consistency.h), so a
 * round that mixes versions is detected: its versions differ and its result is wrong.
 *
 *   consistency interactive   one round thread ("roundthr"); next_value() blocks reading a
 *                             value from an internal pipe, i.e. inside producer(). stdin:
 *                             "value N" feeds it, "quit" exits. Prints per round:
 *                             "round K value V versions P C Q out X ok|MIXED|BAD", and
 *                             "waiting in producer vP round K" while blocked.
 *   consistency workers N     N worker threads ("worker") run rounds continuously. stdin:
 *                             "stats" prints "stats rounds R v1 A v2 B mixed M bad X", "quit".
 * Both print "ready" once started. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "consistency.h"

#include "fixture.h"

static int value_pipe[2];
static int interactive;

static atomic_long rounds, rounds_v1, rounds_v2, rounds_mixed, rounds_bad;
static __thread long tl_counter;


/* Not patched. Interactive: blocks until the test sends a value (we are inside producer()). */
__attribute__((noinline)) long next_value(struct record *r) {
    long v;
    if (interactive) {
        say("waiting in producer v%d round %ld\n", r->pv, r->round);
        char buf[64];
        size_t n = 0;
        for (;;) {
            char c;
            ssize_t k = read(value_pipe[0], &c, 1);
            if (k < 0 && errno == EINTR) continue;
            if (k <= 0) exit(3);
            if (c == '\n') break;
            if (n + 1 < sizeof buf) buf[n++] = c;
        }
        buf[n] = 0;
        v = atol(buf);
    } else {
        v = ++tl_counter;
    }
    r->value = v;
    return v;
}

/* Not patched: consumer() calls it; it sleeps in some rounds so that threads are found blocked
 * in the middle of a round (with producer and consumer on their stacks). */
__attribute__((noinline)) void round_pause(struct record *r) {
    if (r->pause) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
    }
}

__attribute__((noinline)) void printer(struct record *r) {
    r->qv = 1;
    r->out = r->sum;
}

__attribute__((noinline)) void consumer(struct record *r) {
    r->cv = 1;
    r->sum = 3 * r->a;
    round_pause(r);
    printer(r);
    r->cdone = 1;
}

__attribute__((noinline)) void producer(struct record *r) {
    r->pv = 1;
    long v = next_value(r);
    r->a = v;
    consumer(r);
    r->pdone = 1;
}

/* One round; returns 0 if consistent, else 1 (mixed) or 2 (bad result). */
static int run_round(struct record *r, long k, int pause) {
    memset((void *)r, 0, sizeof *r);
    r->round = k;
    r->pause = pause;
    producer(r);
    int mixed = !(r->pv == r->cv && r->cv == r->qv);
    int bad = r->out != 3 * r->value || !r->pdone || !r->cdone;
    atomic_fetch_add(&rounds, 1);
    if (!mixed && r->pv == 1) atomic_fetch_add(&rounds_v1, 1);
    if (!mixed && r->pv == 2) atomic_fetch_add(&rounds_v2, 1);
    if (mixed) atomic_fetch_add(&rounds_mixed, 1);
    if (bad) atomic_fetch_add(&rounds_bad, 1);
    return mixed ? 1 : bad ? 2 : 0;
}

static void *round_thread(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "roundthr");
    say("roundthr tid %ld\n", (long)syscall(SYS_gettid));
    struct record r;
    for (long k = 1;; k++) {
        int res = run_round(&r, k, 0);
        say("round %ld value %ld versions %d %d %d out %ld %s\n", k, r.value, r.pv, r.cv, r.qv, r.out,
            res == 0 ? "ok" : res == 1 ? "MIXED" : "BAD");
    }
    return NULL;
}

static void *worker(void *arg) {
    long id = (long)arg;
    pthread_setname_np(pthread_self(), "worker");
    struct record r;
    for (long k = 1;; k++) {
        int res = run_round(&r, k, (k + id) % 64 == 0);
        if (res) say("round %ld of worker %ld versions %d %d %d value %ld out %ld %s\n", k, id, r.pv, r.cv,
                     r.qv, r.value, r.out, res == 1 ? "MIXED" : "BAD");
        if (k % 4096 == 0) sched_yield();
    }
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t;
    if (argc > 1 && !strcmp(argv[1], "interactive")) {
        interactive = 1;
        if (pipe(value_pipe) != 0) return 2;
        pthread_create(&t, NULL, round_thread, NULL);
    } else {
        int n = argc > 2 ? atoi(argv[2]) : 8;
        for (long i = 0; i < n; i++) pthread_create(&t, NULL, worker, (void *)i);
    }
    say("ready %d\n", (int)getpid());
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "value ", 6)) {
            size_t len = strlen(line + 6);
            if (write(value_pipe[1], line + 6, len) != (ssize_t)len) return 4;
        } else if (!strncmp(line, "stats", 5)) {
            say("stats rounds %ld v1 %ld v2 %ld mixed %ld bad %ld\n", atomic_load(&rounds),
                atomic_load(&rounds_v1), atomic_load(&rounds_v2), atomic_load(&rounds_mixed),
                atomic_load(&rounds_bad));
        }
    }
    fflush(stdout);
    _exit(0);
}
