// The C++ cases of UnitObjectDiff (tests/unit/object_diff_test.cpp), built like cases.c: a
// template and an inline function from a header (changed there), a lambda whose body changed,
// one that did not, a changed static local's initial value.
#include <algorithm>
#include <vector>

#include "cases_header.hpp"

// changed: calls the changed inline function (inlined, or the weak copy emitted here: either way
// something this unit emits changed).
__attribute__((noinline)) int use_inline(int x) {
    return header_inline(x) + 1;
}

// changed: the template's instantiation for long.
__attribute__((noinline)) long use_template(long x) {
    return header_template(x) * 2;
}

// changed: the lambda's body (the lambda's own function, or this one if it was inlined).
__attribute__((noinline)) int sort_desc(std::vector<int> &v) {
    std::sort(v.begin(), v.end(), [](int a, int b) {
#ifdef AFTER
        return a > b;
#else
        return a < b;
#endif
    });
    return v.empty() ? 0 : v.front();
}

// same: a lambda whose body did not change.
__attribute__((noinline)) int count_even(const std::vector<int> &v) {
    return static_cast<int>(std::count_if(v.begin(), v.end(), [](int a) { return a % 2 == 0; }));
}

// data changed: a static local's initial value (refused).
__attribute__((noinline)) int next_id() {
#ifdef AFTER
    static int id = 100;
#else
    static int id = 10;
#endif
    return ++id;
}
