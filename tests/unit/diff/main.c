/* The programs graft diff's tests check a "before" build against (tests/CMakeLists.txt):
 * cases.c built before or after the fix, linked with this. */
#include <stdio.h>

int changed_body(int);
int caller_a(int);
int caller_b(int);

int main(void) {
    printf("%d %d %d\n", changed_body(1), caller_a(2), caller_b(3));
    return 0;
}
