/* test_klp_console: stands for the kernel's console_loglevel (a variable of vmlinux that the
 * test_klp_state* patches save, change and restore; tests/scenarios/klp/klp_state_test.cpp).
 * The variable is static, as a patch usually finds its target's data: the patches reach it by
 * name through GRAFT_REF. get_console_loglevel() lets the host show its value ("call"). */
#include <stdio.h>

#define CONSOLE_LOGLEVEL_DEFAULT 7

/* Written only by the patches: a setter keeps the compiler from folding it into a constant. */
static int console_loglevel = CONSOLE_LOGLEVEL_DEFAULT;

void set_console_loglevel(int level) { console_loglevel = level; }

const char *get_console_loglevel(void) {
    static char buf[32];
    snprintf(buf, sizeof buf, "console_loglevel=%d", *(volatile int *)&console_loglevel);
    return buf;
}
