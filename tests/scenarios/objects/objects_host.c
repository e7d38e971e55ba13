/* objects_host: a() in the executable returns 0; b() is in objects_lib.so, which the program
 * loads and unloads on command (objects_fix patches both to return 1).
 * stdin commands:
 *   load     dlopen(objects_lib.so next to the executable) -> "loaded" (after "ctor b=N")
 *   dlmopen  the same in a new link-map namespace (LM_ID_NEWLM) -> "loaded"
 *   unload   dlclose -> "unloaded" (after "dtor b=N")
 *   call     "a=N b=N", b through dlsym, or "a=N b=none" while the library is not loaded
 *   quit
 * argv[1]: the library's file name next to the executable (default objects_lib.so; the tests
 * also load objects_plain_lib.so, the same source built without graft's flags).
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

volatile int a_value = 0;

__attribute__((noinline)) int a(void) { return a_value; }

static char lib_path[PATH_MAX];
static void *handle;

static void find_lib(const char *name) {
    sibling_path(lib_path, sizeof lib_path, name);
}

int main(int argc, char **argv) {
    find_lib(argc > 1 ? argv[1] : "objects_lib.so");
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "load") || !strcmp(line, "dlmopen")) {
            if (handle) {
                printf("error: already loaded\n");
            } else {
                handle = !strcmp(line, "load") ? dlopen(lib_path, RTLD_NOW)
                                               : dlmopen(LM_ID_NEWLM, lib_path, RTLD_NOW);
                if (handle) printf("loaded\n");
                else printf("error: %s\n", dlerror());
            }
        } else if (!strcmp(line, "unload")) {
            if (!handle) {
                printf("error: not loaded\n");
            } else {
                int rc = dlclose(handle);
                handle = NULL;
                if (rc == 0) printf("unloaded\n");
                else printf("error: %s\n", dlerror());
            }
        } else if (!strcmp(line, "call")) {
            int (*b)(void) = handle ? (int (*)(void))dlsym(handle, "b") : NULL;
            if (b) printf("a=%d b=%d\n", a(), b());
            else printf("a=%d b=none\n", a());
        }
        fflush(stdout);
    }
    return 0;
}
