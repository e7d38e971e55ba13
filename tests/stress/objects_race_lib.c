/* objects_race_lib: b() returns 0 (race_pN: N). objects_race loads and unloads it in a loop. */
volatile int b_value = 0;

__attribute__((noinline)) int b(void) { return b_value; }
