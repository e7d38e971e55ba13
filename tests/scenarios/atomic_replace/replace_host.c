/* replace_host: f1() and f2() return 0 unpatched (replace_a makes f1 return 1, replace_b f2
 * return 2, the cumulative replace_r f1 return 10 and leaves f2 to the original).
 * A "holder" thread can be parked inside holder_fn(), which replace_r also patches: while it is
 * there, it cannot switch to replace_r, so the transition stays pending and the holder shows
 * what an unswitched thread runs.
 * stdin: "get" -> "main f1=N f2=N" (the main thread's calls); "hold" -> starts the holder and
 * prints "holding" once it sleeps in holder_fn(); "held" -> "held f1=N f2=N" (the holder's
 * calls, made from inside holder_fn()); "release" -> "released" once it left holder_fn();
 * "quit". Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "fixture.h"

volatile int f_base;

__attribute__((noinline)) int f1(void) { return f_base; }
__attribute__((noinline)) int f2(void) { return f_base; }

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int request; /* 0 none, 1 call f1/f2, 2 leave */

__attribute__((noinline)) int holder_fn(void) {
    say("holding\n");
    pthread_mutex_lock(&mu);
    for (;;) {
        while (!request) pthread_cond_wait(&cv, &mu);
        int r = request;
        request = 0;
        if (r == 2) break;
        say("held f1=%d f2=%d\n", f1(), f2());
    }
    pthread_mutex_unlock(&mu);
    return 0;
}

static void *holder(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "holder");
    holder_fn();
    say("released\n");
    return NULL;
}

static void ask_holder(int r) {
    pthread_mutex_lock(&mu);
    request = r;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

int main(void) {
    announce_ready();
    char line[64];
    pthread_t t;
    int holding = 0;
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "get")) {
            say("main f1=%d f2=%d\n", f1(), f2());
        } else if (!strcmp(line, "hold") && !holding) {
            holding = 1;
            pthread_create(&t, NULL, holder, NULL);
        } else if (!strcmp(line, "held") && holding) {
            ask_holder(1);
        } else if (!strcmp(line, "release") && holding) {
            ask_holder(2);
            pthread_join(t, NULL);
            holding = 0;
        } else {
            say("error: %s\n", line);
        }
    }
    return 0;
}
