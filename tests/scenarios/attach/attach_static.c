/* attach_static: a statically linked program (no libc.so.6 to load an agent with): prints
 * "ready PID" and answers "tick" with "tick" until stdin ends. */
#include <stdio.h>
#include <string.h>

#include "fixture.h"

int main(void) {
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        printf("tick\n");
        fflush(stdout);
    }
    return 0;
}
