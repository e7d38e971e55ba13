/* basic: worker threads call greet() in a loop; the main thread prints what greet() returns
 * whenever a line arrives on stdin ("tick"), and "ready" once started. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile int greet_base = 1;
atomic_long calls;

__attribute__((noinline)) int greet(void) { return greet_base; }

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&calls, greet() > 0);
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    pthread_t t;
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        printf("greet %d\n", greet());
        fflush(stdout);
    }
    return 0;
}
