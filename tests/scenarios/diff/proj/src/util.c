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
