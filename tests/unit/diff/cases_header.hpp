// The header of cases.cpp: an inline function and a template whose bodies the fix changes.
#pragma once

inline int header_inline(int x) {
#ifdef AFTER
    return x * 4;
#else
    return x * 3;
#endif
}

template <typename T>
T header_template(T x) {
#ifdef AFTER
    return x + x + 1;
#else
    return x + x;
#endif
}
