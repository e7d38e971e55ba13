/* attach_idle: every thread blocked without a timeout, none ever running by itself: one reading a
 * pipe nobody writes, one in pthread_cond_wait, one in epoll_wait on nothing, and the main thread
 * reading stdin. Each counts how its call returned: any return of the first three is a
 * disturbance (EINTR or otherwise).
 *
 * argv "nobody": switch to user and group 65534 first, as a daemon started by root does (the
 * kernel then makes the process not dumpable).
 * argv "waits": ten more threads, blocked in the calls signal(7) says a stop ends with EINTR
 * (read() of a socket with SO_RCVTIMEO, four of them; accept() with SO_RCVTIMEO, two; sigtimedwait;
 * semtimedop) and in calls that restart (select, a raw FUTEX_WAIT), all without end (one hour);
 * "counts" then adds "more=N", their returns (any is a disturbance), and "interruptible" answers
 * "interruptible T..." with the thread ids of the eight in calls a stop would end. The semaphore
 * set is removed at "quit".
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
#include <linux/futex.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
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

static atomic_long more_returns;
static int more_waits, sem_id = -1;
static atomic_int never_changes;
/* The thread ids of the waiters in calls a stop would end with EINTR. */
static atomic_int interruptible[8], interruptible_n;

static void record_interruptible(void) {
    atomic_store(&interruptible[atomic_fetch_add(&interruptible_n, 1) % 8], (int)gettid());
}

static void returned(long n) {
    if (n < 0 && errno == EINTR) atomic_fetch_add(&eintr_returns, 1);
    atomic_fetch_add(&more_returns, 1);
}

static void set_hour_timeout(int fd) {
    struct timeval hour = {3600, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &hour, sizeof hour);
}

static void *sock_reader(void *arg) {
    int fd = (int)(long)arg;
    record_interruptible();
    char c;
    for (;;) returned(read(fd, &c, 1));
    return NULL;
}

static void *acceptor(void *arg) {
    int fd = (int)(long)arg;
    record_interruptible();
    for (;;) returned(accept(fd, NULL, NULL));
    return NULL;
}

static void *sigwaiter(void *arg) {
    (void)arg;
    record_interruptible();
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct timespec hour = {3600, 0};
    for (;;) returned(sigtimedwait(&set, NULL, &hour));
    return NULL;
}

static void *semwaiter(void *arg) {
    (void)arg;
    record_interruptible();
    struct sembuf down = {0, -1, 0};
    struct timespec hour = {3600, 0};
    for (;;) returned(semtimedop(sem_id, &down, 1, &hour));
    return NULL;
}

static void *selecter(void *arg) {
    (void)arg;
    for (;;) {
        fd_set r;
        FD_ZERO(&r);
        FD_SET(quiet_pipe[0], &r);
        returned(select(quiet_pipe[0] + 1, &r, NULL, NULL, NULL));
    }
    return NULL;
}

static void *futex_waiter(void *arg) {
    (void)arg;
    for (;;) returned(syscall(SYS_futex, &never_changes, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0));
    return NULL;
}

static int start_more_waits(void) {
    pthread_t t;
    int pair[2][2];
    for (int i = 0; i < 2; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair[i]) != 0) return -1;
        set_hour_timeout(pair[i][0]);
        set_hour_timeout(pair[i][1]);
        for (int k = 0; k < 2; k++) pthread_create(&t, NULL, sock_reader, (void *)(long)pair[i][k]);
    }
    for (int i = 0; i < 2; i++) {
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        /* An abstract name, unique to this process: nothing is left on disk. */
        snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "graft-attach-idle-%d-%d", getpid(), i);
        if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0) return -1;
        set_hour_timeout(l);
        pthread_create(&t, NULL, acceptor, (void *)(long)l);
    }
    sem_id = semget(IPC_PRIVATE, 1, 0600);
    if (sem_id < 0) return -1;
    pthread_create(&t, NULL, sigwaiter, NULL);
    pthread_create(&t, NULL, semwaiter, NULL);
    pthread_create(&t, NULL, selecter, NULL);
    pthread_create(&t, NULL, futex_waiter, NULL);
    return 0;
}

static void on_timer(union sigval v) {
    (void)v;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "nobody") == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 1;
        if (strcmp(argv[i], "waits") == 0) more_waits = 1;
    }
    if (pipe(quiet_pipe) != 0) return 1;
    pthread_t t;
    pthread_create(&t, NULL, pipe_reader, NULL);
    pthread_create(&t, NULL, cond_waiter, NULL);
    pthread_create(&t, NULL, epoll_waiter, NULL);
    if (more_waits && start_more_waits() != 0) return 1;
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
        if (strcmp(line, "interruptible") == 0) {
            printf("interruptible");
            for (int i = 0; i < atomic_load(&interruptible_n) && i < 8; i++)
                printf(" %d", atomic_load(&interruptible[i]));
            printf("\n");
        }
        if (strcmp(line, "counts") == 0) {
            printf("counts pipe=%ld cond=%ld epoll=%ld eintr=%ld", atomic_load(&pipe_returns),
                   atomic_load(&cond_returns), atomic_load(&epoll_returns), atomic_load(&eintr_returns));
            if (more_waits) printf(" more=%ld", atomic_load(&more_returns));
            printf("\n");
        }
        fflush(stdout);
    }
    if (sem_id >= 0) semctl(sem_id, 0, IPC_RMID);
    return 0;
}
