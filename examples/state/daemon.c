/* A daemon with a global setting, log_level, that patches change while they are in place.
 * Commands on stdin:
 *   status   "log_level L, handler VERSION"   (unpatched: "log_level 3, handler v0")
 *   quit
 * It prints "ready" once started. A worker thread calls handler_version() all the time. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

/* Static: patches reach it by name with GRAFT_REF. 3: warnings; 7: debug. */
static volatile int log_level = 3;

__attribute__((noinline)) const char *handler_version(void) { return "v0"; }

static volatile long calls;

static void *worker(void *arg) {
    (void)arg;
    for (;;) calls += handler_version()[0] == 'v';
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) && strcmp(line, "quit\n") != 0) {
        if (!strcmp(line, "status\n")) printf("log_level %d, handler %s\n", log_level, handler_version());
        else printf("bad command\n");
        fflush(stdout);
    }
    return 0;
}
