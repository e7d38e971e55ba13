/* attach_regs: threads that spin in user code keeping values where a borrowed thread's state
 * lives: errno (a value of its own per thread), %xmm15, and (with AVX2) the upper half of %ymm14.
 * Each pass of a spinner checks them, so a thread `graft attach` borrows and does not give back
 * exactly as it was counts a violation.
 *
 * stdin commands:  counts -> "counts passes=N violations=N"
 *                  quit */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

static atomic_long passes, violations;

/* 1 if %xmm15 lost `pattern` during 20000 checks. */
static long spin_sse(long pattern) {
    long bad;
    __asm__ volatile(
        "movq %[p], %%xmm15\n"
        "mov $20000, %%ecx\n"
        "1: movq %%xmm15, %%rax\n"
        "cmp %[p], %%rax\n"
        "jne 2f\n"
        "dec %%ecx\n"
        "jnz 1b\n"
        "xor %[bad], %[bad]\n"
        "jmp 3f\n"
        "2: mov $1, %[bad]\n"
        "3:\n"
        : [bad] "=&r"(bad)
        : [p] "r"(pattern)
        : "rax", "rcx", "xmm15", "cc");
    return bad;
}

/* 1 if the upper 128 bits of %ymm14 lost `pattern` during 20000 checks. */
__attribute__((target("avx2"))) static long spin_avx(long pattern) {
    long bad;
    __asm__ volatile(
        "movq %[p], %%xmm13\n"
        "vpbroadcastq %%xmm13, %%ymm14\n"
        "mov $20000, %%ecx\n"
        "1: vextracti128 $1, %%ymm14, %%xmm13\n"
        "movq %%xmm13, %%rax\n"
        "cmp %[p], %%rax\n"
        "jne 2f\n"
        "dec %%ecx\n"
        "jnz 1b\n"
        "xor %[bad], %[bad]\n"
        "jmp 3f\n"
        "2: mov $1, %[bad]\n"
        "3: vzeroupper\n"
        : [bad] "=&r"(bad)
        : [p] "r"(pattern)
        : "rax", "rcx", "xmm13", "xmm14", "cc");
    return bad;
}

static void *spinner(void *arg) {
    long id = (long)arg;
    int avx = __builtin_cpu_supports("avx2");
    errno = 1000 + (int)id;
    for (;;) {
        long bad = spin_sse(0x5a5a0000 + id) + (avx ? spin_avx(0x3c3c0000 + id) : 0);
        if (errno != 1000 + id) {
            bad++;
            errno = 1000 + (int)id;
        }
        atomic_fetch_add(&violations, bad);
        atomic_fetch_add(&passes, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    pthread_t t;
    for (long i = 0; i < n; i++) pthread_create(&t, NULL, spinner, (void *)i);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line))
        if (strcmp(line, "counts") == 0)
            printf("counts passes=%ld violations=%ld\n", atomic_load(&passes), atomic_load(&violations));
    return 0;
}
