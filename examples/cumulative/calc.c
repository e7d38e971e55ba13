/* A calculator server with three bugs, fixed over time by three patch releases. Commands on
 * stdin:
 *   show   "2+3=A 5-3=S 4*3=M"   (bugs: A=6, S=-2, M=7; right: 5, 2, 12)
 *   quit
 * It prints "ready" once started. Two worker threads compute all the time. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

__attribute__((noinline)) long add(long a, long b) { return a + b + 1; } /* off by one */
__attribute__((noinline)) long sub(long a, long b) { return b - a; }     /* operands swapped */
__attribute__((noinline)) long mul(long a, long b) { return a + b; }     /* adds */

static void *worker(void *arg) {
    volatile long x = (long)arg;
    for (;;) x = mul(add(x, 1), sub(x, 2)) & 0xffff;
    return NULL;
}

int main(void) {
    pthread_t t;
    for (long i = 0; i < 2; i++) pthread_create(&t, NULL, worker, (void *)i);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strcmp(line, "quit\n") != 0) {
        if (!strcmp(line, "show\n")) printf("2+3=%ld 5-3=%ld 4*3=%ld\n", add(2, 3), sub(5, 3), mul(4, 3));
        else printf("bad command\n");
        fflush(stdout);
    }
    return 0;
}
