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
