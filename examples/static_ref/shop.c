/* shop: prints the price of an apple and of a pear (list price 1000 cents) once a second.
 *   ./shop [APPLE_RATE PEAR_RATE]   discounts in percent (default 10 and 25) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

long apple_price(long cents);
long pear_price(long cents);
void apple_set_rate(long percent);
void pear_set_rate(long percent);

int main(int argc, char **argv) {
    if (argc == 3) {
        apple_set_rate(atol(argv[1]));
        pear_set_rate(atol(argv[2]));
    }
    for (;;) {
        printf("apple %ld  pear %ld\n", apple_price(1000), pear_price(1000));
        fflush(stdout);
        sleep(1);
    }
}
