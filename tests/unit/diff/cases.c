/* The C cases of UnitObjectDiff (tests/unit/object_diff_test.cpp): built twice with
 * -O2 -ffunction-sections -fdata-sections, without and with -DAFTER (the "fix"). Each function
 * says what the comparison must report for it. */
#include <stdio.h>
#include <string.h>

/* A string literal added before every other one: the others move in .rodata.str, and the
 * functions that use them must still compare equal. */
#ifdef AFTER
const char *added_first(void) {
    return "a string that only the fix has";
}
#endif

/* changed: its body. */
int changed_body(int x) {
#ifdef AFTER
    return x * 3 + 1;
#else
    return x * 2 + 1;
#endif
}

/* same. */
int unchanged(int x) {
    return x + 7;
}

/* A static function that changed, inlined into two callers: both callers are changed, the
 * third caller that does not use it is not. */
static inline int clamp(int x) {
#ifdef AFTER
    return x > 9 ? 9 : x;
#else
    return x > 10 ? 10 : x;
#endif
}
int caller_a(int x) {
    return clamp(x) + 1;
}
int caller_b(int x) {
    return clamp(x * 5) * 2;
}
int caller_c(int x) {
    return x - 3;
}

/* same: uses a string literal that moved. */
int uses_string(char *buf, size_t n) {
    return snprintf(buf, n, "%s-%d", "graft", (int)n);
}

/* new in the fix. */
#ifdef AFTER
int brand_new(int x) {
    return x - 1;
}
#endif

/* Data: a changed initial value (refused), an unchanged one, a static counter (same). */
int table[4] = {1, 2, 3,
#ifdef AFTER
                5
#else
                4
#endif
};
int constant_table[4] = {7, 7, 7, 7};
static int counter;
int bump(void) {
    return ++counter + table[3];
}

/* A clone: gcc specialises the static function for a constant argument (`.constprop.N`) or
 * drops an unused one (`.isra.N`); the numbers may differ between the builds, the name must
 * still correlate (unchanged here). */
static __attribute__((noinline)) int scaled_sum(const int *v, int n, int k) {
    int s = 0;
    for (int i = 0; i < n; i++) s += v[i] * k;
    return s;
}
int uses_clone(const int *v, int n) {
    return scaled_sum(v, n, 3) + scaled_sum(v, n, 3);
}
