/* libnocfi: code built without unwind tables or debug information (-fno-asynchronous-unwind-tables
 * -fno-unwind-tables -g0), as some hand-tuned or legacy libraries are: an unwinder standing in it
 * has to look for separate debug information (tests/scenarios/no_network/no_network_test.cpp). */
#include <unistd.h>

__attribute__((noinline, visibility("default"))) long nocfi_wait(int fd) {
    char c;
    long n = read(fd, &c, 1);
    __asm__ volatile("" ::: "memory"); /* not a tail call: this frame stays on the stack */
    return n;
}
