/* bad_input_plainlib: an ordinary shared library, not a graft patch. If the agent ever ran its
 * code, the target would print the line below. */
#include <stdio.h>
#include <unistd.h>

__attribute__((constructor)) static void plainlib_ctor(void) {
    static const char msg[] = "plainlib constructor ran\n";
    ssize_t n = write(1, msg, sizeof msg - 1);
    (void)n;
}

int plainlib_value(void) { return 42; }
