/* unwind_forms: threads asleep in read() under the kinds of frames the worker's stack check must
 * tell apart (docs/design.md §6.2). Each thread calls a function the patch replaces, which calls
 * on down to read() on a pipe of its own:
 *   plain   busy_plain() -> park()             every frame has CFA = rsp + k (the cached walk)
 *   fp      busy_fp()    -> fp_frame()         a frame whose CFA is rbp-based (alloca): neither
 *                                              walk can compute it from sp and pc
 *   signal  busy_sig()   -> a signal handler   a signal frame on the stack (libdwfl's walk)
 * Prints "ready PID", then "<kind> parked tid T" for each thread; stdin "release <kind>" wakes
 * that thread, which prints "<kind> left" and ends; "quit" exits. Its stderr joins its stdout, so
 * that the agent's GRAFT_DEBUG_UNWIND lines reach the test with the rest. */
#define _GNU_SOURCE
#include <alloca.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fixture.h"

enum { PLAIN, FP, SIG, KINDS };
static const char *kind_name[KINDS] = {"plain", "fp", "signal"};
static int pipes[KINDS][2];
static volatile int alloca_size = 64;

__attribute__((noinline)) static void park(int kind) {
    say("%s parked tid %ld\n", kind_name[kind], (long)syscall(SYS_gettid));
    char c;
    while (read(pipes[kind][0], &c, 1) < 0) {
    }
}

__attribute__((noinline)) void busy_plain(void) {
    park(PLAIN);
    __asm__ volatile("" ::: "memory");  // not a tail call: busy_plain stays on the stack
}

/* A variable-size alloca makes gcc and clang address the frame through %rbp: the CFA of this
 * frame is rbp-based from its prologue on. */
__attribute__((noinline)) static void fp_frame(void) {
    char *buf = alloca((size_t)alloca_size);
    memset(buf, 0, (size_t)alloca_size);
    park(FP);
    __asm__ volatile("" : : "r"(buf) : "memory");
}

__attribute__((noinline)) void busy_fp(void) {
    fp_frame();
    __asm__ volatile("" ::: "memory");
}

static void on_usr1(int sig) {
    (void)sig;
    park(SIG);
}

__attribute__((noinline)) void busy_sig(void) {
    pthread_kill(pthread_self(), SIGUSR1);  // the handler runs on this stack, above busy_sig
    __asm__ volatile("" ::: "memory");
}

static void *run(void *arg) {
    int kind = (int)(long)arg;
    char name[16];
    snprintf(name, sizeof name, "uw-%s", kind_name[kind]);
    pthread_setname_np(pthread_self(), name);
    if (kind == PLAIN) busy_plain();
    if (kind == FP) busy_fp();
    if (kind == SIG) busy_sig();
    say("%s left\n", kind_name[kind]);
    return NULL;
}

int main(void) {
    dup2(1, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    for (int k = 0; k < KINDS; k++)
        if (pipe(pipes[k])) return 1;
    announce_ready();
    pthread_t t[KINDS];
    for (int k = 0; k < KINDS; k++) pthread_create(&t[k], NULL, run, (void *)(long)k);
    char line[64];
    while (next_command(line, sizeof line)) {
        for (int k = 0; k < KINDS; k++)
            if (!strncmp(line, "release ", 8) && !strcmp(line + 8, kind_name[k])) {
                if (write(pipes[k][1], "x", 1) != 1) return 1;
            }
    }
    return 0;
}
