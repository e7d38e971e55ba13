/* nocfi_host: value() returns 1 unpatched. stdin: "block" starts a thread that waits inside
 * libnocfi.so (code without unwind tables) and prints "waiting tid T"; "wake" lets it go, and it
 * prints "woke"; "quit" exits. Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/syscall.h>

#include "fixture.h"

long nocfi_wait(int fd);

volatile int value_base = 1;
__attribute__((noinline)) int value(void) { return value_base; }

static int pipe_fds[2];

static void *waiter(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "waiter");
    say("waiting tid %ld\n", (long)syscall(SYS_gettid));
    nocfi_wait(pipe_fds[0]);
    say("woke\n");
    return NULL;
}

int main(void) {
    if (pipe(pipe_fds) != 0) return 1;
    announce_ready();
    char line[64];
    pthread_t t;
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "block")) pthread_create(&t, NULL, waiter, NULL);
        if (!strcmp(line, "wake")) {
            if (write(pipe_fds[1], "x", 1) != 1) say("wake failed\n");
        }
        if (!strcmp(line, "value")) say("value %d\n", value());
    }
    _exit(0);
}
