#include <stdlib.h>

#include "proj.h"

/* The bug fix_parse.patch fixes: a negative length is taken as it is. */
int parse_len(const char *s) {
    int n = atoi(s);
    return clamp_len(n);
}

int util_version(void) {
    return 3;
}

/* Its __LINE__ moves when a fix adds a line above it: graft diff must not take that for a change. */
int util_line(void) {
    return __LINE__;
}

/* Names check_name() refused: data a patch of check_name() must share with the running program. */
static long refused;

__attribute__((noinline)) static int name_limit(void) {
    return 8;
}

long util_refused(void) {
    return refused;
}

/* The bug fix_name.patch fixes: a name of exactly name_limit() characters is accepted. */
const char *check_name(const char *s) {
    if ((int)__builtin_strlen(s) > name_limit()) {
        refused++;
        return "refused: too long";
    }
    return "ok";
}

/* Sessions: session_open() allocates a log line nobody frees (the leak fix_leak.patch fixes). */
struct session {
    int id;
};
static long log_lines; /* allocated and not freed */

struct session *session_open(int id) {
    struct session *s = calloc(1, sizeof *s);
    char *log = malloc(32);
    log_lines++;
    log[0] = 0;
    __asm__ volatile("" : : "r"(log) : "memory"); /* the allocation stays: it is the leak */
    s->id = id;
    return s;
}

void session_close(struct session *s) {
    free(s);
}

long util_log_lines(void) {
    return log_lines;
}
