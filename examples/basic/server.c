/* A small temperature-conversion server. Four worker threads answer conversions as fast as they
 * can (the load a live patch must not disturb); the main thread reads one command per line on
 * stdin:
 *   convert C   prints "C C = F F"
 *   stats       prints "served N" (conversions the workers answered so far: N > 0)
 *   quit
 * It prints "ready" once started. The bug is in celsius_to_fahrenheit(): it adds 23, not 32. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_long served;

/* noinline: callers must call it, so that replacing the function reaches every caller. */
__attribute__((noinline)) long celsius_to_fahrenheit(long celsius) { return celsius * 9 / 5 + 23; }

static void *worker(void *arg) {
    long c = (long)arg;
    for (;;) {
        if (celsius_to_fahrenheit(c) != 0) atomic_fetch_add(&served, 1);
        c = (c + 1) % 100;
    }
    return NULL;
}

int main(void) {
    pthread_t t;
    for (long i = 0; i < 4; i++) pthread_create(&t, NULL, worker, (void *)(i * 25));
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strcmp(line, "quit\n") != 0) {
        long c;
        if (sscanf(line, "convert %ld", &c) == 1) printf("%ld C = %ld F\n", c, celsius_to_fahrenheit(c));
        else if (strcmp(line, "stats\n") == 0) printf("served %ld\n", atomic_load(&served));
        else printf("unknown command\n");
        fflush(stdout);
    }
    return 0;
}
