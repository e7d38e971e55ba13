/* entry_park (tests/stress/entry_park_stress.cpp): threads parked at every instruction boundary
 * of a function's first bytes while graft rewrites its entry. A parker thread single-steps
 * through scale()'s first 16 bytes (the trap flag) and, at each boundary, sleeps 2 ms inside
 * its SIGTRAP handler: the interrupted pc, saved in the signal frame, is exactly the boundary
 * (after `push %rbp` is the case to beat), and when the handler returns the thread resumes
 * there. Workers call scale() in tight loops. Commands on stdin:
 *   tick -> "scale S wrong W parks P offsets MASK calls N first B"
 * S: scale(7) (22 unpatched, 23 patched); W: results that are neither; P: parks so far; MASK:
 * bit i set when a thread was parked at scale+i; B: scale's first byte in hex (90 when it starts
 * with the jump layout's five 1-byte nops, as gcc emits them). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "fixture.h"

atomic_long wrong, calls, parks;
atomic_ulong offsets;

__attribute__((noinline)) int scale(int x) {
    int r = x * 3;
    if (x < 0) {
        char buf[64];
        snprintf(buf, sizeof buf, "%d", x);
        r += (int)strlen(buf);
    }
    return r + 1;
}

static uintptr_t lo, hi;
/* Built with graft's gate layout (entry_park_gate): where the gate's second byte is. A parker
 * that steps onto it stays 300 ms, so that graft, attaching, merges gcc's `90 90` under it. */
static uintptr_t gate_second;
static __thread int entered; /* this parker's step reached scale() in this call */

static void on_step(int sig, siginfo_t *si, void *ucv) {
    (void)sig;
    ucontext_t *uc = ucv;
    if (si->si_code != TRAP_TRACE && si->si_code != TRAP_BRKPT) return;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    if (pc >= lo && pc < hi) {
        entered = 1;
        atomic_fetch_or(&offsets, 1ul << (pc - lo));
        atomic_fetch_add(&parks, 1);
        struct timespec ts = {0, (pc == gate_second ? 300 : 2) * 1000 * 1000};
        nanosleep(&ts, NULL);
    } else if (entered) {
        uc->uc_mcontext.gregs[REG_EFL] &= ~0x100l; /* out of the entry: stop stepping */
    }
}

static void *parker(void *arg) {
    (void)arg;
    for (;;) {
        entered = 0;
        __asm__ volatile("pushfq; orq $0x100, (%%rsp); popfq" ::: "memory", "cc");
        int s = scale(7);
        __asm__ volatile("pushfq; andq $-257, (%%rsp); popfq" ::: "memory", "cc");
        if (s != 22 && s != 23) atomic_fetch_add(&wrong, 1);
    }
    return NULL;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        int s = scale(7);
        if (s != 22 && s != 23) atomic_fetch_add(&wrong, 1);
        atomic_fetch_add(&calls, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 4;
    int parkers = argc > 2 ? atoi(argv[2]) : 2;
    lo = (uintptr_t)scale;
    hi = lo + 16;
#ifdef GATE_LAYOUT
    {
        const unsigned char *p = (const unsigned char *)scale;
        int endbr = p[0] == 0xf3 && p[1] == 0x0f && p[2] == 0x1e && p[3] == 0xfa;
        gate_second = lo + (endbr ? 4 : 0) + 1;
    }
#endif
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_step;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTRAP, &sa, NULL);
    pthread_t t;
    for (int i = 0; i < parkers; i++) pthread_create(&t, NULL, parker, NULL);
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line))
        if (strcmp(line, "tick") == 0)
            say("scale %d wrong %ld parks %ld offsets %lx calls %ld first %02x\n", scale(7),
                atomic_load(&wrong), atomic_load(&parks), atomic_load(&offsets), atomic_load(&calls),
                *(const unsigned char *)scale);
    return 0;
}
