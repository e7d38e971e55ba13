/* exec_host: f() returns 0 (exec_fix: 1); two worker threads call it in a loop.
 * stdin commands:
 *   call   "f=N"
 *   exec   execv(exec_target next to this program): the same process becomes exec_target
 *          ("exec failed: WHY" if it cannot)
 *   quit
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile int f_value = 0;
atomic_long calls;

__attribute__((noinline)) int f(void) { return f_value; }

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&calls, f() + 1);
    return NULL;
}

int main(void) {
    char path[PATH_MAX];
    sibling_path(path, sizeof path, "exec_target");

    pthread_t t;
    for (int i = 0; i < 2; i++) pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "call")) {
            printf("f=%d\n", f());
        } else if (!strcmp(line, "exec")) {
            char *argv[] = {"exec_target", NULL};
            execv(path, argv);
            printf("exec failed: %s\n", strerror(errno));
        }
        fflush(stdout);
    }
    return 0;
}
