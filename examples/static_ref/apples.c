/* Apples: 10% off. This file and pears.c both define a static `rate` and a static
 * `discount()`: in the program's symbol table each name appears twice, apples.c's first
 * (link order), so a patch names pears.c's ones with symbol position 2. */
static long rate = 10; /* percent */

static __attribute__((noinline)) long discount(long cents) { return cents * rate / 100; }

long apple_price(long cents) { return cents - discount(cents); }
void apple_set_rate(long percent) { rate = percent; }
