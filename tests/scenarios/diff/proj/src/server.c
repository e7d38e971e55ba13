#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proj.h"

int handle(const char *request) {
    const char *sp = strchr(request, ' ');
    return sp ? parse_len(sp + 1) : -1;
}

static int requests;
static struct session *open_sessions[64];
static int open_count;
static long refused; /* lines too long for the buffer; util.c has a `refused` of its own */

int main(void) {
    char line[128];
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        requests++;
        if (!strchr(line, '\n')) refused++;
        line[strcspn(line, "\n")] = 0;
        if (strncmp(line, "name ", 5) == 0)
            printf("name %s\n", check_name(line + 5));
        else if (strncmp(line, "open ", 5) == 0) {
            for (int n = atoi(line + 5); n > 0 && open_count < 64; n--)
                open_sessions[open_count++] = session_open(n);
            printf("open %d\n", open_count);
        } else if (strcmp(line, "close") == 0) {
            while (open_count > 0) session_close(open_sessions[--open_count]);
            printf("closed\n");
        } else if (strcmp(line, "loglines") == 0)
            printf("loglines %ld\n", util_log_lines());
        else if (strcmp(line, "refused") == 0)
            printf("refused %ld %ld\n", util_refused(), refused);
        else
            printf("len %d\n", handle(line));
        fflush(stdout);
    }
    return 0;
}
