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
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "name ", 5) == 0)
            printf("name %s\n", check_name(line + 5));
        else if (strcmp(line, "refused") == 0)
            printf("refused %ld\n", util_refused());
        else
            printf("len %d\n", handle(line));
        fflush(stdout);
    }
    return 0;
}
