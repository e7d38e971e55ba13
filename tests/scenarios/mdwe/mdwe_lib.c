/* mdwe_lib: a library built the way distributions build (no patchable entries), opened by mdwe
 * after a patch for it is loaded. */
volatile int lib_base = 10;
__attribute__((noinline)) int lib_value(void) { return lib_base; }
