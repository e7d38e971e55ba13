/* no_disturbance: threads blocked in system calls that graft must not disturb while it patches a
 * function other threads call.
 *
 * Each waiter blocks with a timeout (or on a pipe only the main thread writes) and counts its
 * returns: EINTR returns and early wake-ups (back before the timeout with nothing to read) are
 * disturbances. Workers call work(), the patched function, in a loop.
 *
 * stdin commands:  tick   -> "work N" (work() as the main thread sees it)
 *                  poke   -> one byte into the pipe of the pipe reader: "piperead N"
 *                  counts -> "counts K=V ..." for every waiter: iters, eintr, early, errors
 *                  quit */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fixture.h"

#define TIMEOUT_MS 50
/* SO_RCVTIMEO is counted in jiffies: it may end up to one jiffy (<= 10 ms) before the wall time. */
#define JIFFY_SLACK_NS (12 * 1000000LL)

volatile int work_base = 1;
atomic_long work_calls;

__attribute__((noinline)) int work(void) { return work_base; }

enum { W_EPOLL, W_POLL, W_NANOSLEEP, W_SOCKREAD, W_PIPEREAD, W_COUNT };
static const char *const kNames[W_COUNT] = {"epoll", "poll", "nanosleep", "sockread", "piperead"};
struct counters {
    atomic_long iters, eintr, early, errors, data;
};
static struct counters cnt[W_COUNT];
static int quiet_pipe[2], poke_pipe[2], sock[2];

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One return of a wait with a timeout: n < 0 with errno, 0 = timed out, > 0 = woken by data. */
static void account(struct counters *c, long n, int err, long long t0, long long slack) {
    long long el = now_ns() - t0;
    atomic_fetch_add(&c->iters, 1);
    if (n < 0 && err == EINTR) atomic_fetch_add(&c->eintr, 1);
    else if (n < 0) atomic_fetch_add(&c->errors, 1);
    else if (n > 0 || el < TIMEOUT_MS * 1000000LL - slack) atomic_fetch_add(&c->early, 1);
}

static void *epoll_waiter(void *arg) {
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, quiet_pipe[0], &ev);
    for (;;) {
        long long t0 = now_ns();
        int n = epoll_wait(ep, &ev, 1, TIMEOUT_MS);
        account(&cnt[W_EPOLL], n, errno, t0, 0);
    }
    return NULL;
}

static void *poll_waiter(void *arg) {
    (void)arg;
    for (;;) {
        struct pollfd p = {quiet_pipe[0], POLLIN, 0};
        long long t0 = now_ns();
        int n = poll(&p, 1, TIMEOUT_MS);
        account(&cnt[W_POLL], n, errno, t0, 0);
    }
    return NULL;
}

static void *sleeper(void *arg) {
    (void)arg;
    for (;;) {
        struct timespec ts = {0, TIMEOUT_MS * 1000000L}, rem;
        long long t0 = now_ns();
        int n = nanosleep(&ts, &rem);
        account(&cnt[W_NANOSLEEP], n, errno, t0, 0);
    }
    return NULL;
}

/* read() on a socket with SO_RCVTIMEO: a signal handler makes it fail with EINTR even with
 * SA_RESTART (signal(7)); the timeout makes it fail with EAGAIN. */
static void *sock_reader(void *arg) {
    (void)arg;
    struct timeval tv = {0, TIMEOUT_MS * 1000};
    setsockopt(sock[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (;;) {
        char b;
        long long t0 = now_ns();
        long n = read(sock[0], &b, 1);
        int err = errno;
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK)) n = 0;  /* timed out */
        account(&cnt[W_SOCKREAD], n, err, t0, JIFFY_SLACK_NS);
    }
    return NULL;
}

/* A plain blocking read() on a pipe: every return must bring the byte the main thread wrote. */
static void *pipe_reader(void *arg) {
    (void)arg;
    for (;;) {
        char b;
        long n = read(poke_pipe[0], &b, 1);
        int err = errno;
        struct counters *c = &cnt[W_PIPEREAD];
        atomic_fetch_add(&c->iters, 1);
        if (n == 1 && b == 'p') {
            printf("piperead %ld\n", atomic_fetch_add(&c->data, 1) + 1);
            fflush(stdout);
        }
        else if (n < 0 && err == EINTR) atomic_fetch_add(&c->eintr, 1);
        else if (n < 0) atomic_fetch_add(&c->errors, 1);
        else atomic_fetch_add(&c->early, 1);
    }
    return NULL;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&work_calls, work() > 0);
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    if (pipe(quiet_pipe) != 0 || pipe(poke_pipe) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sock) != 0) return 1;
    pthread_t t;
    void *(*waiters[])(void *) = {epoll_waiter, poll_waiter, sleeper, sock_reader, pipe_reader};
    for (int i = 0; i < W_COUNT; i++) {
        pthread_create(&t, NULL, waiters[i], NULL);
        pthread_setname_np(t, kNames[i]);
    }
    for (int i = 0; i < workers; i++) {
        pthread_create(&t, NULL, worker, NULL);
        pthread_setname_np(t, "worker");
    }
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strncmp(line, "tick", 4)) {
            printf("work %d\n", work());
        } else if (!strncmp(line, "poke", 4)) {
            if (write(poke_pipe[1], "p", 1) != 1) return 1;
        } else if (!strncmp(line, "counts", 6)) {
            printf("counts");
            for (int i = 0; i < W_COUNT; i++)
                printf(" %s_iters=%ld %s_eintr=%ld %s_early=%ld %s_errors=%ld %s_data=%ld", kNames[i],
                       atomic_load(&cnt[i].iters), kNames[i], atomic_load(&cnt[i].eintr), kNames[i],
                       atomic_load(&cnt[i].early), kNames[i], atomic_load(&cnt[i].errors), kNames[i],
                       atomic_load(&cnt[i].data));
            printf(" work_calls=%ld\n", atomic_load(&work_calls));
        }
        fflush(stdout);
    }
    return 0;
}
