/* attach_idle: every thread blocked without a timeout, none ever running by itself: one reading a
 * pipe nobody writes, one in pthread_cond_wait, one in epoll_wait on nothing, and the main thread
 * reading stdin. Each counts how its call returned: any return of the first three is a
 * disturbance (EINTR or otherwise).
 *
 * argv[1] "nobody": switch to user and group 65534 first, as a daemon started by root does (the
 * kernel then makes the process not dumpable).
 *
 * stdin commands:  tick   -> "work N" (work(), the function the patch replaces)
 *                  spawn  -> "spawned 3": three more threads like the first three (born after
 *                            an attach, they block before ever calling work())
 *                  dlspawn -> "dlspawned 2": a pipe reader and an epoll waiter more, created
 *                            through dlsym(RTLD_DEFAULT, "pthread_create") (no GOT slot)
 *                  timer  -> "timer 1": a SIGEV_THREAD timer that expires in an hour: the C
 *                            library creates its helper thread itself, every signal blocked
 *                  counts -> "counts pipe=N cond=N epoll=N eintr=N"
 *                  quit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

volatile int work_base = 1;
__attribute__((noinline)) int work(void) { return work_base; }

static atomic_long pipe_returns, cond_returns, epoll_returns, eintr_returns;
static int quiet_pipe[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *pipe_reader(void *arg) {
    (void)arg;
    char c;
    for (;;) {
        ssize_t n = read(quiet_pipe[0], &c, 1);
        if (n < 0 && errno == EINTR) atomic_fetch_add(&eintr_returns, 1);
        atomic_fetch_add(&pipe_returns, 1);
    }
    return NULL;
}

static void *cond_waiter(void *arg) {
    (void)arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        pthread_cond_wait(&never, &mu);
        atomic_fetch_add(&cond_returns, 1);
    }
    return NULL;
}

static void *epoll_waiter(void *arg) {
    (void)arg;
    int ep = epoll_create1(0);
    struct epoll_event ev;
    for (;;) {
        int n = epoll_wait(ep, &ev, 1, -1);
        if (n < 0 && errno == EINTR) atomic_fetch_add(&eintr_returns, 1);
        atomic_fetch_add(&epoll_returns, 1);
    }
    return NULL;
}

static void on_timer(union sigval v) {
    (void)v;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "nobody") == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 1;
    if (pipe(quiet_pipe) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, pipe_reader, NULL);
    pthread_create(&t, NULL, cond_waiter, NULL);
    pthread_create(&t, NULL, epoll_waiter, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (strcmp(line, "tick") == 0) printf("work %d\n", work());
        if (strcmp(line, "spawn") == 0) {
            int n = (pthread_create(&t, NULL, pipe_reader, NULL) == 0) +
                    (pthread_create(&t, NULL, cond_waiter, NULL) == 0) +
                    (pthread_create(&t, NULL, epoll_waiter, NULL) == 0);
            printf("spawned %d\n", n);
        }
        if (strcmp(line, "dlspawn") == 0) {
            int (*create)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
                (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_DEFAULT,
                                                                                              "pthread_create");
            int n = create && create(&t, NULL, pipe_reader, NULL) == 0;
            n += create && create(&t, NULL, epoll_waiter, NULL) == 0;
            printf("dlspawned %d\n", n);
        }
        if (strcmp(line, "timer") == 0) {
            struct sigevent ev;
            memset(&ev, 0, sizeof ev);
            ev.sigev_notify = SIGEV_THREAD;
            ev.sigev_notify_function = on_timer;
            timer_t id;
            struct itimerspec later = {{0, 0}, {3600, 0}};
            printf("timer %d\n", timer_create(CLOCK_MONOTONIC, &ev, &id) == 0 && timer_settime(id, 0, &later, NULL) == 0);
        }
        if (strcmp(line, "counts") == 0)
            printf("counts pipe=%ld cond=%ld epoll=%ld eintr=%ld\n", atomic_load(&pipe_returns),
                   atomic_load(&cond_returns), atomic_load(&epoll_returns), atomic_load(&eintr_returns));
        fflush(stdout);
    }
    return 0;
}
