/* bad_input: the second static function named twin (see bad_input.c). */
volatile int twin_b_base = 20;

static __attribute__((noinline)) int twin(void) { return twin_b_base; }
__attribute__((noinline)) int twin_b(void) { return twin(); }
