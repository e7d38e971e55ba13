/* ordinary_jumplib: a shared library built with `graft flags target --entry jump` (5 bytes of nop
 * at each function's entry, nothing before it), loaded by ordinary_jump. jl_scale(7) is 36, 37
 * with ordinary_jump_fix. */
__attribute__((noinline)) int jl_scale(int x) {
    return x * 5 + 1;
}
