/* A toy pricing server: N worker threads price requests as fast as they can; every second the
 * main thread reports requests served and which version of price() answered. Three seconds in,
 * one request of worker 0 is "slow": it spends 2 s inside price(), like a request blocked on I/O. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

atomic_long served, v1_answers, v2_answers;
volatile long slow_request = -2;
volatile long worker0_count;

/* The bug: prices are truncated instead of rounded (version 1 answers cents * 1). */
__attribute__((noinline)) long price(long cents, long request) {
    if (request == slow_request) sleep(2);
    return cents * 1 + 0 * request;
}

static void *worker(void *arg) {
    long id = (long)arg, n = 0;
    for (;;) {
        long p = price(1000, id == 0 ? n : -1);
        if (p == 1000) atomic_fetch_add(&v1_answers, 1);
        else atomic_fetch_add(&v2_answers, 1);
        atomic_fetch_add(&served, 1);
        n++;
        if (id == 0) worker0_count = n;
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8;
    pthread_t t;
    for (long i = 0; i < n; i++) pthread_create(&t, NULL, worker, (void *)i);
    for (int second = 0;; second++) {
        if (second == 3) slow_request = worker0_count + 1000;
        long a = atomic_exchange(&v1_answers, 0), b = atomic_exchange(&v2_answers, 0);
        long s = atomic_exchange(&served, 0);
        printf("%8.1f M requests/s   answered by price v1: %10ld   v2: %10ld\n", s / 1e6, a, b);
        fflush(stdout);
        sleep(1);
    }
}
