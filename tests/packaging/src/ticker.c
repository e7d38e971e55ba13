// A multi-threaded patchable program: four workers call answer() all the time and the main
// thread prints, every 100 ms, what answer() gives it and what each worker last got.
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#define WORKERS 4

static volatile int seen[WORKERS];

// The function the patch replaces (noinline: a call that is inlined never reaches the patch).
__attribute__((noinline)) int answer(int x) {
    return x + 1;
}

static void *worker(void *arg) {
    long id = (long)arg;
    for (;;) {
        seen[id] = answer(41);
        usleep(1000);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    for (;;) {
        usleep(100 * 1000);
        printf("main=%d workers=%d,%d,%d,%d\n", answer(41), seen[0], seen[1], seen[2], seen[3]);
    }
}
