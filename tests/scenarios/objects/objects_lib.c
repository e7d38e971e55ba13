/* objects_lib: the shared library objects_host loads and unloads (soname objects_lib.so).
 * b() returns 0 (objects_fix: 1). Its constructor and destructor call b() and print what it
 * returned: a patch applied to the loading object before its constructors run shows in
 * "ctor b=1", one removed only after its destructors ran shows in "dtor b=1".
 * objects_lib_tag is data a patch's unpatch callbacks read as the library goes.
 * The lines are written with write(2): in a dlmopen namespace the library has a libc (and a
 * stdout buffer) of its own. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

volatile int b_value = 0;
/* Data of the library's own, which objects_going_fix's unpatch callbacks read. */
const char objects_lib_tag[] = "objects_lib's data";

__attribute__((noinline)) int b(void) { return b_value; }

static void say(const char *what) {
    char line[64];
    int n = snprintf(line, sizeof line, "%s b=%d\n", what, b());
    ssize_t w = write(1, line, (size_t)n);
    (void)w;
}

__attribute__((constructor)) static void objects_lib_ctor(void) { say("ctor"); }
__attribute__((destructor)) static void objects_lib_dtor(void) { say("dtor"); }
