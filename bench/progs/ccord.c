/* ccord: a shared library built with ordinary flags (-O2, no patchable entry) for callcost: the
 * same `x + 1` functions as the program's, with their own loops, so that every call is a direct
 * call inside the library (no PLT). In a shared object the patch's code is mapped in the same
 * region, within a rel32's reach: once settled, graft's rewritten entry of f_lodone is one
 * `jmp rel32` straight to the new function (docs/design.md §2.6).
 *   f_ldirect  the baseline
 *   f_lodone   patched by p_done (a 5-byte nop, then x + 1: the jump covers the nop)
 *   f_ltrans   the same, patched by p_trans, whose transition the driver keeps pending
 * and the two layouts of `graft flags target`, side by side in the same object:
 *   f_lgate    graft's gate layout (--entry gate: 14 bytes before the entry, a 2-byte gate at it),
 *              patched by p_done: gate -> jmp *slot in the prefix -> new function
 *   f_ljump    the jump layout (--entry jump: 5 bytes of nop at the entry), patched by p_done:
 *              one jmp rel32 to the new function
 *   f_lgtrans, f_ljtrans  the same two, patched by p_trans (in a transition) */
#include <stdint.h>

#define LOCAL __attribute__((noipa, visibility("hidden")))

LOCAL uint64_t f_ldirect(uint64_t x) {
    __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00");
    return x + 1;
}
LOCAL uint64_t f_lodone(uint64_t x) {
    __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00");
    return x + 1;
}

LOCAL uint64_t f_ltrans(uint64_t x) {
    __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00");
    return x + 1;
}

#define GATE __attribute__((noipa, visibility("hidden"), patchable_function_entry(16, 14), aligned(16)))
#define JUMP __attribute__((noipa, visibility("hidden"), patchable_function_entry(5, 0)))
GATE uint64_t f_lgate(uint64_t x) {
    return x + 1;
}
JUMP uint64_t f_ljump(uint64_t x) {
    return x + 1;
}
GATE uint64_t f_lgtrans(uint64_t x) {
    return x + 1;
}
JUMP uint64_t f_ljtrans(uint64_t x) {
    return x + 1;
}

#define LOOP(fn)                                                          \
    __attribute__((noipa, aligned(64))) uint64_t loop_##fn(uint64_t n) { \
        uint64_t s = 0;                                                   \
        for (uint64_t i = 0; i < n; i++) s = fn(s);                       \
        return s;                                                         \
    }
LOOP(f_ldirect)
LOOP(f_lodone)
LOOP(f_ltrans)
LOOP(f_lgate)
LOOP(f_ljump)
LOOP(f_lgtrans)
LOOP(f_ljtrans)
