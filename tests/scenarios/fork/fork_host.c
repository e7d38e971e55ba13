/* fork_host: worker threads call f() (returns 0; fork_fix: 1) in a loop; the main thread forks
 * children on command. A child is single-threaded (the forking main thread): it prints
 * "child PID", then waits for signals sent to its main thread (tgkill): on SIGUSR1 it prints
 * "child PID f=N" (f() called from its main loop), on SIGTERM it exits with status 0. The
 * children write to the same stdout.
 *
 * f() (and fork_fix's f()) first calls hold_point(), where a thread can be kept inside f() to
 * hold a transition of f() pending:
 *   - the "holder" thread, on "hold", until "release";
 *   - the main thread, on "forkf": it waits inside f() for SIGUSR2 (sent to it with tgkill),
 *     then forks there. The child starts inside f(), in the patch state its parent's main thread
 *     had, prints "child PID in f" and stays in f() until SIGUSR1; then it prints
 *     "child PID left f=N" (what the f() it was in returned) and goes on as above.
 *
 * stdin commands:
 *   call       "f=N" (f() on the main thread)
 *   hold       the holder calls f() and blocks inside it; it prints "holding" from there
 *   release    lets the holder leave f(); it prints "released f=N"
 *   fork       fork a child (which prints "child PID")
 *   forkf      the main thread enters f(), prints "main in f", waits for SIGUSR2, forks, prints
 *              "forked PID" and leaves f()
 *   reap PID   waitpid -> "reaped PID status S" (exit status, or 128 + signal)
 *   quit
 * Prints "ready PID" once started. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

volatile int f_value = 0;
atomic_long calls;
static __thread int hold_here, fork_here;
static int req_pipe[2], rel_pipe[2];
static int in_child;
static sigset_t child_wait_mask; /* the child's mask with SIGUSR1 and SIGTERM open */

int f(void);
void hold_point(void);


/* In a child: no stdio (another thread of the parent may have held its locks at the fork). */
static void child_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void child_say(const char *fmt, ...) {
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ssize_t w = write(1, buf, (size_t)n);
    (void)w;
}

static volatile sig_atomic_t got_usr1, got_term;
static void on_signal(int sig) {
    if (sig == SIGUSR1) got_usr1 = 1;
    else got_term = 1;
}

/* Right after the fork, in the child. */
static void child_setup(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the parent (a test that failed) */
    if (getppid() != parent) _exit(1);
    in_child = 1;
    __fpurge(stdout); /* a copy of what another thread was printing at the fork: not ours */
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &child_wait_mask);
    sigdelset(&child_wait_mask, SIGUSR1);
    sigdelset(&child_wait_mask, SIGTERM);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* The child's loop: SIGUSR1 reports f(), SIGTERM exits. */
static void child_loop(void) {
    int pid = (int)getpid();
    for (;;) {
        while (!got_usr1 && !got_term) sigsuspend(&child_wait_mask); /* pause(), race-free */
        if (got_usr1) {
            got_usr1 = 0;
            child_say("child %d f=%d\n", pid, f());
        }
        if (got_term) exit(0);
    }
}

/* "forkf": inside f(), wait for SIGUSR2 and fork there. */
static void fork_inside_f(void) {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2); /* blocked in every thread since the start */
    say("main in f\n");
    int sig;
    sigwait(&usr2, &sig);
    pid_t parent = getpid();
    pid_t p = fork();
    if (p == 0) {
        child_setup(parent);
        child_say("child %d in f\n", (int)getpid());
        while (!got_usr1 && !got_term) sigsuspend(&child_wait_mask);
        if (got_term) exit(0);
        got_usr1 = 0;
        return; /* leaves f(); main() sees in_child */
    }
    if (p < 0) say("fork failed\n");
    else say("forked %d\n", (int)p);
}

/* Called at the start of f(), by every thread: only the holder, when asked to, blocks here,
 * and the main thread forks here on "forkf". */
__attribute__((noinline)) void hold_point(void) {
    if (fork_here) {
        fork_here = 0;
        fork_inside_f();
        return;
    }
    if (!hold_here) return;
    hold_here = 0;
    say("holding\n");
    char c;
    ssize_t r = read(rel_pipe[0], &c, 1);
    (void)r;
}

__attribute__((noinline)) int f(void) {
    hold_point();
    return f_value;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) atomic_fetch_add(&calls, f() + 1);
    return NULL;
}

static void *holder(void *arg) {
    (void)arg;
    pthread_setname_np(pthread_self(), "holder");
    char c;
    while (read(req_pipe[0], &c, 1) == 1) {
        hold_here = 1;
        int v = f();
        say("released f=%d\n", v);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 3;
    if (pipe(req_pipe) != 0 || pipe(rel_pipe) != 0) return 1;
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL); /* before the threads: they inherit it */
    pthread_t t;
    for (int i = 0; i < workers; i++) pthread_create(&t, NULL, worker, NULL);
    pthread_create(&t, NULL, holder, NULL);
    announce_ready();
    char line[64];
    while (next_command(line, sizeof line)) {
        if (!strcmp(line, "call")) {
            say("f=%d\n", f());
        } else if (!strcmp(line, "hold")) {
            ssize_t w = write(req_pipe[1], "h", 1);
            (void)w;
        } else if (!strcmp(line, "release")) {
            ssize_t w = write(rel_pipe[1], "r", 1);
            (void)w;
        } else if (!strcmp(line, "fork")) {
            pid_t parent = getpid();
            pid_t p = fork();
            if (p == 0) {
                child_setup(parent);
                child_say("child %d\n", (int)getpid());
                child_loop();
            }
            if (p < 0) say("fork failed\n");
        } else if (!strcmp(line, "forkf")) {
            fork_here = 1;
            int v = f();
            if (in_child) {
                child_say("child %d left f=%d\n", (int)getpid(), v);
                child_loop();
            }
        } else if (!strncmp(line, "reap ", 5)) {
            pid_t p = (pid_t)atoi(line + 5);
            int st = 0;
            if (waitpid(p, &st, 0) != p) say("reaped %d failed\n", (int)p);
            else say("reaped %d status %d\n", (int)p, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        }
    }
    return 0;
}
