/* access: a target for the access tests (tests/scenarios/access/access_test.cpp).
 * stdin commands:
 *   "nodump"  prctl(PR_SET_DUMPABLE, 0), as a daemon started as root that dropped its privileges
 *             is; prints "nodump done".
 *   "fill N"  writes N long lines to the agent's log (graft_log, found with dlsym: this program
 *             runs under `graft run`), so that `graft log` has a large answer; prints "filled".
 *   "quit"    exits.
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "fixture.h"

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    announce_ready();
    char line[256];
    while (next_command(line, sizeof line)) {
        if (strcmp(line, "nodump") == 0) {
            if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) perror("prctl");
            say("nodump done\n");
        } else if (strncmp(line, "fill ", 5) == 0) {
            void (*graft_log)(const char *, ...) =
                (void (*)(const char *, ...))dlsym(RTLD_DEFAULT, "graft_log");
            if (!graft_log) {
                say("no graft_log\n");
                continue;
            }
            char text[901];
            memset(text, 'x', sizeof text - 1);
            text[sizeof text - 1] = 0;
            for (int i = 0, n = atoi(line + 5); i < n; i++) graft_log("fill %d %s", i, text);
            say("filled\n");
        }
    }
    return 0;
}
