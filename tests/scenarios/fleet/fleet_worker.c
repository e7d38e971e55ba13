/* fleet_worker: a small service using libfleet.so. "tick" prints "value N" (N = fleet_value()),
 * "quit" exits. A second thread calls fleet_value() every millisecond and counts any answer
 * that is neither the old (1) nor the patched (2) value; "tick" reports that count too. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *fleet_build(void);
int fleet_value(void);

static volatile long g_wrong;

static void *caller(void *arg) {
    (void)arg;
    struct timespec ms = {0, 1000000};
    for (;;) {
        int v = fleet_value();
        if (v != 1 && v != 2) __atomic_add_fetch(&g_wrong, 1, __ATOMIC_RELAXED);
        nanosleep(&ms, NULL);
    }
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    pthread_create(&t, NULL, caller, NULL);
    printf("ready %s\n", fleet_build());
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        if (strncmp(line, "tick", 4) == 0)
            printf("value %d wrong %ld\n", fleet_value(), __atomic_load_n(&g_wrong, __ATOMIC_RELAXED));
        else if (strncmp(line, "quit", 4) == 0)
            return 0;
    }
    return 0;
}
