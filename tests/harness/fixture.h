/* Helpers shared by the test programs: the path of a file next to the running executable
 * (their libraries and helpers live there), whole lines from several threads, and the stdin
 * command loop. */
#pragma once
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static inline void sibling_path(char *out, size_t size, const char *name) {
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n < 0) n = 0;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    snprintf(slash ? slash + 1 : out, size - (size_t)((slash ? slash + 1 : out) - out), "%s", name);
}

/* "ready PID": the harness waits for it before talking to the program. */
static inline void announce_ready(void) {
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
}

/* The next stdin command, newline removed; 0 at end of input or on "quit". */
static inline int next_command(char *line, int size) {
    fflush(stdout);
    if (!fgets(line, size, stdin)) return 0;
    line[strcspn(line, "\n")] = 0;
    return strcmp(line, "quit") != 0;
}

/* printf + fflush under one lock: lines written by several threads never interleave. Not inline:
 * patches reach it by name (GRAFT_REF "say"). */
static pthread_mutex_t fixture_out_mu = PTHREAD_MUTEX_INITIALIZER;
__attribute__((noinline, used, format(printf, 1, 2))) static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&fixture_out_mu);
    vprintf(fmt, ap);
    fflush(stdout);
    pthread_mutex_unlock(&fixture_out_mu);
    va_end(ap);
}
