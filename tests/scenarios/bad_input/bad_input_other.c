/* bad_input_other: a different program, for a patch built with `--target` of the wrong program.
 * It has a value() too, so only the build-id tells the two programs apart. */
#include <stdio.h>

volatile int value_base = 100;

__attribute__((noinline)) int value(void) { return value_base + 1; }

int main(void) {
    printf("other %d\n", value());
    return 0;
}
