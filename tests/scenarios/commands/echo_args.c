/* echo_args: prints its arguments on one line, then $LD_PRELOAD on a second, and exits with the
 * status given as its first argument. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    for (int i = 2; i < argc; i++) printf("%s%s", argv[i], i + 1 < argc ? " " : "");
    const char *pre = getenv("LD_PRELOAD");
    printf("\n%s\n", pre ? pre : "");
    return argc > 1 ? atoi(argv[1]) : 0;
}
