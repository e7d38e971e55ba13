#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proj.h"

int handle(const char *request) {
    const char *sp = strchr(request, ' ');
    return sp ? parse_len(sp + 1) : -1;
}

static int requests;

int main(void) {
    char line[128];
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        requests++;
        printf("len %d\n", handle(line));
        fflush(stdout);
    }
    return 0;
}
