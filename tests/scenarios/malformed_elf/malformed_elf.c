/* malformed_elf: a target that loads plugins with malformed section headers (the agent reads
 * every object the process loads) and is patched afterwards.
 *
 * value() is what the good patch (malformed_elf_fix) replaces; a worker thread calls it in a loop.
 *
 * stdin commands:  tick      -> "value V"
 *                  open PATH -> dlopen(PATH) and call its plugin_value(): "plugin P", or
 *                               "dlopen failed: <why>"
 *                  quit */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"

volatile int value_base = 1;
atomic_long calls;

__attribute__((noinline)) int value(void) {
    return value_base;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&calls, value() > 0);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    announce_ready();
    char line[4096];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "tick")) {
            printf("value %d\n", value());
        } else if (!strncmp(line, "open ", 5)) {
            void *h = dlopen(line + 5, RTLD_NOW | RTLD_LOCAL);
            int (*fn)(void) = h ? (int (*)(void))dlsym(h, "plugin_value") : NULL;
            if (fn)
                printf("plugin %d\n", fn());
            else
                printf("dlopen failed: %s\n", dlerror());
        }
        fflush(stdout);
    }
    return 0;
}
