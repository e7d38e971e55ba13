/* stuck: threads that enter hold() and stay there until the test releases them.
 * stdin commands:
 *   "hold X"   start a thread named "holder-X" that calls hold(); it prints
 *              "holder X in hold vN tid T" from inside hold() and blocks there.
 *   "release"  lets every holder leave hold(); each prints "holder X left hold vN".
 *   "ver"      the main thread prints "version N" (what version() returns to it).
 *   "sigdfl"   resets graft's transition signal (SIGRTMIN+6) to SIG_DFL, as a program that
 *              resets every signal it does not know might; prints "handler reset".
 *   "quit"     exits.
 * A worker thread ("ticker") calls version() in a loop so that a thread running outside hold()
 * goes through the patched functions all the time. Prints "ready" once started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t hold_cv = PTHREAD_COND_INITIALIZER;
volatile int release_gen;
volatile int version_base = 1;
atomic_long ticks;


/* Blocks until the next "release". Called with the holder's name. */
__attribute__((noinline)) int hold(const char *who) {
    pthread_mutex_lock(&hold_mu);
    int gen = release_gen;
    say("holder %s in hold v1 tid %ld\n", who, (long)syscall(SYS_gettid));
    while (release_gen == gen) pthread_cond_wait(&hold_cv, &hold_mu);
    pthread_mutex_unlock(&hold_mu);
    return 1;
}

__attribute__((noinline)) int version(void) { return version_base; }

static void *holder(void *arg) {
    char *who = arg;
    char name[16];
    snprintf(name, sizeof name, "holder-%s", who);
    pthread_setname_np(pthread_self(), name);
    int v = hold(who);
    say("holder %s left hold v%d\n", who, v);
    free(who);
    return NULL;
}

static void *ticker(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "ticker");
    for (;;) {
        atomic_fetch_add(&ticks, version());
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_create(&t, NULL, ticker, NULL);
    say("ready %d\n", (int)getpid());
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "quit")) break;
        if (!strncmp(line, "hold ", 5)) {
            pthread_create(&t, NULL, holder, strdup(line + 5));
            pthread_detach(t);
        } else if (!strcmp(line, "release")) {
            pthread_mutex_lock(&hold_mu);
            release_gen++;
            pthread_cond_broadcast(&hold_cv);
            pthread_mutex_unlock(&hold_mu);
        } else if (!strcmp(line, "sigdfl")) {
            signal(SIGRTMIN + 6, SIG_DFL);
            say("handler reset\n");
        } else if (!strcmp(line, "ver")) {
            say("version %d\n", version());
        }
    }
    _exit(0);
}
