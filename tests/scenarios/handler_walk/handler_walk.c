/* handler_walk: threads that never block, so that only the transition signal can switch them,
 * under the kinds of frames the signal handler's walk with the worker's rows must get right
 * (docs/design.md §4.6):
 *   plain   busy_spin()    -> step()              every frame has CFA = rsp + k
 *   fp      busy_fp_spin() -> fp_frame() -> step() a frame whose CFA is rbp-based (alloca), under
 *                                                  a callee that may save rbp itself
 *   free    spins in run() -> step()              nothing patched on its stack
 *   call    busy_call_spin() -> leaf()            leaf() is patched too: every call of it goes
 *                                                  through the selector, whose self-checks walk
 *                                                  from leaf's caller with the same rows
 *   deep    deep1() ... deep6(), descend() 100 frames deep, then step() forever: nothing
 *           patched on its stack, which is deep enough that libgcc's walk of it takes long, and
 *           made of functions no other thread runs (the test makes any libgcc walk run out of its
 *           time: only the rows the worker prepares for the whole stack from one miss can carry
 *           it, since each check that runs out shows the worker one more function at most)
 * busy_spin, busy_fp_spin and busy_call_spin are what the patch replaces: while a thread spins
 * in one, it must never be switched. Once released, the call thread goes on calling leaf() from
 * run(), and a self-check switches it. Prints "ready PID", then "<kind> spinning tid T"; stdin "release <kind>"
 * makes that thread leave its function and spin on in run(); the main thread prints "<kind> left"
 * once it has. The released thread itself prints nothing: a signal landing in stdio would be
 * walked with libgcc (no rows cover printf), and the test wants the walk that switches it to be
 * one with the rows. "quit" exits. */
#define _GNU_SOURCE
#include <alloca.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

enum { PLAIN, FP, FREE, CALL, DEEP, KINDS };
static const char *kind_name[KINDS] = {"plain", "fp", "free", "call", "deep"};
static volatile int hold[KINDS] = {1, 1, 1, 1, 1};
static volatile int left[KINDS];
static volatile int quit;
static volatile int alloca_size = 64;
static volatile unsigned long sink;

/* Some arithmetic, with enough live values that the compiler may spill rbp into use. */
__attribute__((noinline)) static void step(unsigned long i) {
    unsigned long a = i, b = i * 3, c = i ^ 0x55, d = i + 7, e = i * i;
    for (int k = 0; k < 64; k++) {
        a = a * 31 + b;
        b ^= c >> 3;
        c += d * 5;
        d = (d << 1) ^ e;
        e += a;
    }
    sink += a + b + c + d + e;
}

__attribute__((noinline)) void busy_spin(void) {
    for (unsigned long i = 0; hold[PLAIN]; i++) step(i);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) unsigned long leaf(unsigned long i) {
    __asm__ volatile("" ::: "memory");
    return i * 2654435761u;
}

__attribute__((noinline)) void busy_call_spin(void) {
    for (unsigned long i = 0; hold[CALL]; i++) sink += leaf(i);
    __asm__ volatile("" ::: "memory");
}

/* A variable-size alloca makes gcc and clang address the frame through %rbp. */
__attribute__((noinline)) static void fp_frame(void) {
    char *buf = alloca((size_t)alloca_size);
    memset(buf, 0, (size_t)alloca_size);
    for (unsigned long i = 0; hold[FP]; i++) step(i + (unsigned long)buf[i & 31]);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

__attribute__((noinline)) void busy_fp_spin(void) {
    fp_frame();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void descend(int n) {
    if (n > 0) {
        descend(n - 1);
        __asm__ volatile("" ::: "memory"); /* not a tail call: every level keeps its frame */
        return;
    }
    for (unsigned long i = 0; !quit; i++) step(i);
}

/* Every level keeps its frame: the empty asm after each call rules out a tail call. */
__attribute__((noinline)) static void deep_base(void) {
    descend(100);
    __asm__ volatile("" ::: "memory");
}
#define DEEP(name, next)                          \
    __attribute__((noinline)) static void name(void) { \
        next();                                   \
        __asm__ volatile("" ::: "memory");        \
    }
DEEP(deep6, deep_base)
DEEP(deep5, deep6)
DEEP(deep4, deep5)
DEEP(deep3, deep4)
DEEP(deep2, deep3)
DEEP(deep1, deep2)

static void *run(void *arg) {
    int kind = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "hw-%s", kind_name[kind]);
    pthread_setname_np(pthread_self(), name);
    say("%s spinning tid %ld\n", kind_name[kind], (long)syscall(SYS_gettid));
    if (kind == PLAIN) busy_spin();
    if (kind == FP) busy_fp_spin();
    if (kind == CALL) busy_call_spin();
    if (kind == DEEP) deep1();
    if (kind != FREE) left[kind] = 1;
    if (kind == CALL)
        for (unsigned long i = 0; !quit; i++) sink += leaf(i);
    for (unsigned long i = 0; !quit; i++) step(i);
    return NULL;
}

int main(void) {
    announce_ready();
    pthread_t t[KINDS];
    for (int k = 0; k < KINDS; k++) pthread_create(&t[k], NULL, run, (void *)(long)k);
    char line[64];
    while (next_command(line, sizeof line)) {
        for (int k = 0; k < KINDS; k++)
            if (!strncmp(line, "release ", 8) && !strcmp(line + 8, kind_name[k])) {
                hold[k] = 0;
                if (k == FREE || k == DEEP) continue; /* they never leave */
                while (!left[k]) usleep(1000);
                say("%s left\n", kind_name[k]);
            }
    }
    for (int k = 0; k < KINDS; k++) hold[k] = 0;
    quit = 1;
    for (int k = 0; k < KINDS; k++) pthread_join(t[k], NULL);
    return 0;
}
