/* Pears: 25% off. The bug: discount() divides by 1000 instead of 100 (2.5% off). */
static long rate = 25; /* percent */

static __attribute__((noinline)) long discount(long cents) { return cents * rate / 1000; }

long pear_price(long cents) { return cents - discount(cents); }
void pear_set_rate(long percent) { rate = percent; }
