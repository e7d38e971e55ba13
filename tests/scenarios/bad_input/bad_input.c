/* bad_input: a target that every refused patch must leave exactly as it was.
 *
 * value() is the function the good patch (bad_input_fix) replaces. twin() is a static function
 * whose name also exists in bad_input_twin.c (an ambiguous symbol: sympos 1 is this file's, 2 is
 * bad_input_twin.c's, in link order). hold() blocks in read() on a pipe, so that a thread kept
 * inside it keeps a transition pending.
 *
 * stdin commands:  tick    -> "value V twin_a A twin_b B"
 *                  hold    -> the holder thread enters hold(): "holding", later "released"
 *                  release -> lets hold() return
 *                  quit
 * Worker threads call value() and both twins in a loop. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile int value_base = 1;
volatile int twin_a_base = 10;
atomic_long calls;
static int go_pipe[2], release_pipe[2];

__attribute__((noinline)) int value(void) { return value_base; }

/* The first of two static functions named twin (the other one is in bad_input_twin.c). */
static __attribute__((noinline)) int twin(void) { return twin_a_base; }
__attribute__((noinline)) int twin_a(void) { return twin(); }
int twin_b(void);  /* bad_input_twin.c */

__attribute__((noinline)) void hold(void) {
    printf("holding\n");
    fflush(stdout);
    char c;
    while (read(release_pipe[0], &c, 1) < 0) {
    }
    printf("released\n");
    fflush(stdout);
}

static void *holder(void *arg) {
    (void)arg;
    char c;
    for (;;) {
        if (read(go_pipe[0], &c, 1) == 1) hold();
    }
    return NULL;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&calls, value() + twin_a() + twin_b() > 0);
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    if (pipe(go_pipe) != 0 || pipe(release_pipe) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, holder, NULL);
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "tick", 4)) {
            printf("value %d twin_a %d twin_b %d\n", value(), twin_a(), twin_b());
        } else if (!strncmp(line, "hold", 4)) {
            if (write(go_pipe[1], "h", 1) != 1) return 1;
        } else if (!strncmp(line, "release", 7)) {
            if (write(release_pipe[1], "r", 1) != 1) return 1;
        }
        fflush(stdout);
    }
    return 0;
}
