/* iconv_host: converts with the charset GRAFTTEST, whose converter is the gconv module
 * gconv_graft.so next to this program: glibc loads that object itself (its own dlopen) the first
 * time a conversion from or to GRAFTTEST is opened. GCONV_PATH is set to the program's
 * directory before that, so glibc reads the `gconv-modules` file there.
 * stdin commands:
 *   conv   "abc" from UTF-8 to GRAFTTEST   -> "conv=<the GRAFTTEST bytes>"
 *   rconv  "abc" from GRAFTTEST to UTF-8   -> "rconv=<the UTF-8 bytes>"
 *   quit
 * Each conversion opens its descriptor on first use and keeps it. On failure it prints
 * "conv=error <what>: <errno text>". Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <errno.h>
#include <iconv.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"

static void convert(const char *label, iconv_t *cd, const char *to, const char *from) {
    if (*cd == (iconv_t)-1) {
        *cd = iconv_open(to, from);
        if (*cd == (iconv_t)-1) {
            printf("%s=error iconv_open: %s\n", label, strerror(errno));
            return;
        }
    }
    char in[] = "abc", out[64];
    char *ip = in, *op = out;
    size_t il = strlen(in), ol = sizeof out - 1;
    if (iconv(*cd, &ip, &il, &op, &ol) == (size_t)-1 || iconv(*cd, NULL, NULL, &op, &ol) == (size_t)-1) {
        printf("%s=error iconv: %s\n", label, strerror(errno));
        return;
    }
    *op = 0;
    printf("%s=%s\n", label, out);
}

int main(void) {
    char dir[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n < 0) n = 0;
    dir[n] = 0;
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    setenv("GCONV_PATH", dir, 1);

    iconv_t to_graft = (iconv_t)-1, from_graft = (iconv_t)-1;
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "conv")) convert("conv", &to_graft, "GRAFTTEST", "UTF-8");
        else if (!strcmp(line, "rconv")) convert("rconv", &from_graft, "UTF-8", "GRAFTTEST");
        fflush(stdout);
    }
    return 0;
}
