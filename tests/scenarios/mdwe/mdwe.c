/* mdwe: a program that forbids itself writable+executable memory (prctl(PR_SET_MDWE,
 * PR_MDWE_REFUSE_EXEC_GAIN)) before it starts its threads, as hardened services do. Worker threads
 * call greet() in a loop; the main thread answers commands on stdin.
 *
 * Prints "ready PID mdwe=N refused=N": N is what PR_GET_MDWE says, and refused=1 when making a
 * written page executable was refused (MDWE is in force).
 * stdin commands:  tick  -> "greet N wrong N" (greet(); workers' results other than 1 or 2)
 *                  open  -> dlopens mdwe_lib.so and prints "lib N" (its lib_value())
 *                  wx    -> "wx N": mappings of this process that are writable and executable
 *                  quit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "fixture.h"

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

volatile int greet_base = 1;
static atomic_long wrong;

__attribute__((noinline)) int greet(void) { return greet_base; }

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        int g = greet();
        if (g != 1 && g != 2) atomic_fetch_add(&wrong, 1);
    }
    return NULL;
}

/* Mappings whose permissions have both w and x. */
static int wx_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        char perms[8] = "";
        if (sscanf(line, "%*s %7s", perms) == 1 && perms[1] == 'w' && perms[2] == 'x') n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 3;
    prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0);
    int mdwe = prctl(PR_GET_MDWE, 0, 0, 0, 0);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int refused = p != MAP_FAILED && mprotect(p, 4096, PROT_READ | PROT_EXEC) != 0 && errno == EACCES;
    if (p != MAP_FAILED) munmap(p, 4096);
    pthread_t t;
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    printf("ready %d mdwe=%d refused=%d\n", (int)getpid(), mdwe, refused);
    fflush(stdout);
    char line[64];
    while (next_command(line, sizeof line)) {
        if (strcmp(line, "tick") == 0) {
            printf("greet %d wrong %ld\n", greet(), atomic_load(&wrong));
        } else if (strcmp(line, "open") == 0) {
            char path[4096];
            sibling_path(path, sizeof path, "mdwe_lib.so");
            void *h = dlopen(path, RTLD_NOW);
            int (*fn)(void) = h ? (int (*)(void))dlsym(h, "lib_value") : NULL;
            if (fn)
                printf("lib %d\n", fn());
            else
                printf("lib error %s\n", dlerror());
        } else if (strcmp(line, "wx") == 0) {
            printf("wx %d\n", wx_mappings());
        }
        fflush(stdout);
    }
    return 0;
}
