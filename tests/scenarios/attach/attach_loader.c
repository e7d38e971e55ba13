/* attach_loader: one thread blocked inside dlopen (of a FIFO no one has opened for writing: ld.so's
 * open waits, with the loader's lock held), created first (lowest tid), one blocked in read() of a pipe no one writes, and the
 * main thread waiting for commands in epoll_wait (a call a stop would interrupt: never borrowed).
 * The thread inside dlopen must never be borrowed: a second dlopen in it re-enters the loader
 * half-way through the first. Once its dlopen returns (the FIFO opened and closed: "file too
 * short"), it blocks in read() of the same quiet pipe.
 *
 * argv[1]: the FIFO. Prints "ready PID loader=TID reader=TID".
 * stdin commands:  tick   -> "work N" (work(), the function the patch replaces)
 *                  state  -> "state dlopen_returned=N reads=N eintr=N"
 *                  quit */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

volatile int work_base = 1;
__attribute__((noinline)) int work(void) { return work_base; }

static const char *fifo;
static int quiet_pipe[2];
static atomic_int loader_tid, reader_tid;
static atomic_long dlopen_returned, reads, eintr;

static void wait_quietly(void) {
    char c;
    for (;;) {
        ssize_t n = read(quiet_pipe[0], &c, 1);
        if (n < 0 && errno == EINTR) atomic_fetch_add(&eintr, 1);
        atomic_fetch_add(&reads, 1);
    }
}

static void *loader(void *arg) {
    (void)arg;
    atomic_store(&loader_tid, gettid());
    /* After the reader exists: creating a thread takes the loader's lock (TLS set-up). */
    while (!atomic_load(&reader_tid)) usleep(1000);
    if (dlopen(fifo, RTLD_NOW) == NULL) atomic_fetch_add(&dlopen_returned, 1);
    wait_quietly();
    return NULL;
}

static void *reader(void *arg) {
    (void)arg;
    atomic_store(&reader_tid, gettid());
    wait_quietly();
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || pipe(quiet_pipe) != 0) return 1;
    fifo = argv[1];
    pthread_t t;
    pthread_create(&t, NULL, loader, NULL);
    pthread_create(&t, NULL, reader, NULL);
    while (!atomic_load(&loader_tid) || !atomic_load(&reader_tid)) usleep(1000);
    printf("ready %d loader=%d reader=%d\n", (int)getpid(), atomic_load(&loader_tid), atomic_load(&reader_tid));
    fflush(stdout);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev) != 0) return 1;
    char line[64];
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 0) continue;
        if (!fgets(line, sizeof line, stdin)) return 0;
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "quit") == 0) return 0;
        if (strcmp(line, "tick") == 0) printf("work %d\n", work());
        if (strcmp(line, "state") == 0)
            printf("state dlopen_returned=%ld reads=%ld eintr=%ld\n", atomic_load(&dlopen_returned),
                   atomic_load(&reads), atomic_load(&eintr));
        fflush(stdout);
    }
}
