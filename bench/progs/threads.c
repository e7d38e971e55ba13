/* threads: a process with many threads, for transition time, disturbance and memory.
 *
 *   threads [--blocked=N] [--depth=D] [--spin-unpatched=K] [--spin-patched=K]
 *           [--gap-unpatched=K] [--gap-patched=K] [--stack-kb=S]
 *
 * --blocked N       N threads, each D frames deep in descend(), then asleep: in turn in read()
 *                   on a pipe, in FUTEX_WAIT, in epoll_wait() (none of them ever wakes up).
 * --spin-unpatched  threads D frames deep spinning in code no patch touches.
 * --spin-patched    threads D frames deep calling patched_fn() in a loop (the function
 *                   p_threads replaces).
 * --gap-unpatched / --gap-patched
 *                   like the spinners, but each iteration reads the clock and keeps the
 *                   largest gap between two iterations and a histogram of gaps: a thread held
 *                   (signal handler, selector slow path, descheduled) shows up as a gap.
 * Prints one JSON line {"ready":...} once every thread is in place, then reads commands:
 *   window    start a new measuring window for the gap threads (answers the last window)
 *   sigcost N the kernel's cost of one signal to a running thread, on this machine: the main
 *             thread sends itself N signals with a handler that does nothing (graft's flags),
 *             and N tgkill(self, 0) calls (the same system call, nothing delivered); answers
 *             the CPU time per call of each, and the longest single signal
 *   quit
 * Works with or without the graft agent (for memory comparisons). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TARGET __attribute__((noipa))

enum kind { K_READ, K_FUTEX, K_EPOLL, K_SPIN_UNPATCHED, K_SPIN_PATCHED, K_GAP_UNPATCHED, K_GAP_PATCHED };

static int g_pipe[2];
static int g_epfd;
static uint32_t g_futex;
static int g_depth = 10;
static volatile uint64_t g_sink;

/* The function p_threads replaces (x + 1 -> x + 2). */
TARGET uint64_t patched_fn(uint64_t x) { return x + 1; }
TARGET uint64_t unpatched_fn(uint64_t x) { return x + 1; }

static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* ---- gap threads ---------------------------------------------------------------------------
 * Each iteration reads the wall clock (vDSO) and this thread's CPU clock (a system call). A gap
 * in wall time is any interruption, including being descheduled; a gap in the thread's own CPU
 * time is time the thread itself spent outside its loop: signal handlers, graft's selector slow
 * path, kernel work on its behalf. The second is what "graft held the thread" means; the first
 * adds scheduling noise from everything else on the machine. */
#define GAP_BUCKETS 32 /* bucket b: gaps in [2^b, 2^(b+1)) ns; only b >= 10 (1 us) counted */
#define TOP_GAPS 8
struct gap_stats {
    uint64_t max_gap;
    uint64_t hist[GAP_BUCKETS];
    uint64_t top[TOP_GAPS]; /* largest gaps, descending */
};
/* Every gap of 2 us or more (wall or CPU), with when it ended, for attributing gaps to the
 * transitions the driver ran (same CLOCK_MONOTONIC as Python's time.monotonic()). */
#define MAX_EVENTS 65536
struct gap_event {
    uint64_t t, wall, cpu;
};
struct gap_window {
    uint64_t iters, window_ns, cpu_ns, start_ns, nevents, lost;
    struct gap_stats wall, cpu;
    struct gap_event *ev;
};
#define MAX_GAP_THREADS 8
static struct gap_thread {
    int kind;
    pid_t tid;
    struct gap_window last; /* the window that just ended */
    uint32_t acked;         /* window number the thread has started */
} g_gap[MAX_GAP_THREADS];
static int g_ngap;
static uint32_t g_window; /* bumped by the main thread */

static void gap_record(struct gap_stats *s, uint64_t gap) {
    if (gap > s->max_gap) s->max_gap = gap;
    if (gap >= 1024) {
        int b = 63 - __builtin_clzll(gap);
        if (b >= GAP_BUCKETS) b = GAP_BUCKETS - 1;
        s->hist[b]++;
        if (gap > s->top[TOP_GAPS - 1]) {
            int i = TOP_GAPS - 1;
            while (i > 0 && s->top[i - 1] < gap) {
                s->top[i] = s->top[i - 1];
                i--;
            }
            s->top[i] = gap;
        }
    }
}

static inline uint64_t cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

TARGET void gap_loop(struct gap_thread *g) {
    struct gap_window s;
    memset(&s, 0, sizeof s);
    struct gap_event *bufs[2] = {calloc(MAX_EVENTS, sizeof(struct gap_event)),
                                 calloc(MAX_EVENTS, sizeof(struct gap_event))};
    int cur = 0;
    s.ev = bufs[cur];
    uint32_t win = __atomic_load_n(&g_window, __ATOMIC_ACQUIRE);
    uint64_t start = now_ns(), last = start, x = 0;
    uint64_t cstart = cpu_ns(), clast = cstart;
    s.start_ns = start;
    __atomic_store_n(&g->acked, win, __ATOMIC_RELEASE);
    for (;;) {
        if (g->kind == K_GAP_PATCHED)
            x = patched_fn(x);
        else
            x = unpatched_fn(x);
        uint64_t t = now_ns(), c = cpu_ns();
        gap_record(&s.wall, t - last);
        gap_record(&s.cpu, c - clast);
        if (t - last >= 2000 || c - clast >= 2000) {
            if (s.nevents < MAX_EVENTS)
                s.ev[s.nevents++] = (struct gap_event){t, t - last, c - clast};
            else
                s.lost++;
        }
        last = t;
        clast = c;
        s.iters++;
        if ((s.iters & 255) == 0) {
            uint32_t w = __atomic_load_n(&g_window, __ATOMIC_ACQUIRE);
            if (w != win) {
                s.window_ns = t - start;
                s.cpu_ns = c - cstart;
                g->last = s;
                memset(&s, 0, sizeof s);
                cur ^= 1;
                s.ev = bufs[cur];
                start = last = now_ns();
                cstart = clast = cpu_ns();
                s.start_ns = start;
                win = w;
                __atomic_store_n(&g->acked, win, __ATOMIC_RELEASE);
            }
        }
    }
    g_sink = x;
}

/* ---- blocked and spinning threads ---------------------------------------------------------- */
static long g_arrived;

TARGET long block_here(int kind, void *arg) {
    __atomic_fetch_add(&g_arrived, 1, __ATOMIC_RELEASE);
    switch (kind) {
    case K_READ:
        for (;;) {
            char c;
            ssize_t r = read(g_pipe[0], &c, 1);
            if (r == 0) return 0;
        }
    case K_FUTEX:
        for (;;) syscall(SYS_futex, &g_futex, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    case K_EPOLL:
        for (;;) {
            struct epoll_event ev;
            epoll_wait(g_epfd, &ev, 1, -1);
        }
    case K_SPIN_UNPATCHED: {
        uint64_t x = 0;
        for (;;) x = unpatched_fn(x);
    }
    case K_SPIN_PATCHED: {
        uint64_t x = 0;
        for (;;) x = patched_fn(x);
    }
    default:
        gap_loop(arg);
    }
    return 0;
}

/* D frames of this function under every thread's blocking point. */
TARGET long descend(int d, int kind, void *arg) {
    volatile long pad = d;
    if (d <= 1) return block_here(kind, arg) + pad;
    long r = descend(d - 1, kind, arg);
    return r + pad; /* not a tail call: the frame stays */
}

struct start {
    int kind;
    void *arg;
};

static void *thread_main(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    if (s.arg) ((struct gap_thread *)s.arg)->tid = (pid_t)syscall(SYS_gettid);
    descend(g_depth, s.kind, s.arg);
    return NULL;
}

static pthread_attr_t g_attr;

static void spawn(int kind, void *arg) {
    struct start *s = malloc(sizeof *s);
    s->kind = kind;
    s->arg = arg;
    pthread_t t;
    int rc = pthread_create(&t, &g_attr, thread_main, s);
    if (rc) {
        fprintf(stderr, "threads: pthread_create: %s\n", strerror(rc));
        exit(1);
    }
    pthread_detach(t);
}

/* Threads of this process not asleep ('S') right now, not counting the main thread. */
static int count_awake(void) {
    DIR *d = opendir("/proc/self/task");
    int awake = 0;
    struct dirent *e;
    pid_t me = (pid_t)syscall(SYS_gettid);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == me) continue;
        char path[96], buf[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        FILE *f = fopen(path, "re");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f)) {
            char *p = strrchr(buf, ')');
            if (p && p[1] == ' ' && p[2] != 'S') awake++;
        }
        fclose(f);
    }
    closedir(d);
    return awake;
}

static void print_stats(const char *name, const struct gap_stats *s) {
    printf("\"%s\":{\"max_ns\":%llu,\"top_ns\":[", name, (unsigned long long)s->max_gap);
    for (int i = 0; i < TOP_GAPS; i++) printf("%s%llu", i ? "," : "", (unsigned long long)s->top[i]);
    printf("],\"hist_log2_ns\":{");
    int f = 1;
    for (int b = 10; b < GAP_BUCKETS; b++)
        if (s->hist[b]) {
            printf("%s\"%d\":%llu", f ? "" : ",", b, (unsigned long long)s->hist[b]);
            f = 0;
        }
    printf("}}");
}

static void print_gap(const struct gap_thread *g, int first) {
    const struct gap_window *s = &g->last;
    printf("%s{\"kind\":\"%s\",\"tid\":%d,\"iters\":%llu,\"window_ns\":%llu,\"cpu_ns\":%llu,",
           first ? "" : ",", g->kind == K_GAP_PATCHED ? "patched" : "unpatched", g->tid,
           (unsigned long long)s->iters, (unsigned long long)s->window_ns, (unsigned long long)s->cpu_ns);
    print_stats("wall", &s->wall);
    printf(",");
    print_stats("cpu", &s->cpu);
    printf(",\"start_ns\":%llu,\"lost\":%llu,\"events\":[", (unsigned long long)s->start_ns,
           (unsigned long long)s->lost);
    for (uint64_t i = 0; i < s->nevents; i++)
        printf("%s[%llu,%llu,%llu]", i ? "," : "", (unsigned long long)s->ev[i].t,
               (unsigned long long)s->ev[i].wall, (unsigned long long)s->ev[i].cpu);
    printf("]}");
}

static void noop_handler(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)si;
    (void)uc;
}

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The agent's hold histogram's edges (src/agent/service/hold_stats.hpp), µs. */
static const unsigned hist_edges[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
#define HIST_N (sizeof hist_edges / sizeof hist_edges[0] + 1)

/* CPU time per tgkill(self, sig) over n calls, the longest in wall-clock time, and a histogram
 * of the wall-clock times. */
static double g_wall_total_us; /* of the last time_tgkill */
static void time_tgkill(int sig, int n, double *mean_us, double *max_us, unsigned long *hist) {
    pid_t pid = getpid(), tid = (pid_t)syscall(SYS_gettid);
    uint64_t start = thread_cpu_ns(), longest = 0, wall = 0;
    for (size_t b = 0; b < HIST_N; b++) hist[b] = 0;
    for (int i = 0; i < n; i++) {
        uint64_t a = mono_ns();
        syscall(SYS_tgkill, pid, tid, sig);
        uint64_t d = mono_ns() - a;
        wall += d;
        if (d > longest) longest = d;
        size_t b = 0;
        while (b < HIST_N - 1 && d >= hist_edges[b] * 1000ull) b++;
        hist[b]++;
    }
    *mean_us = (double)(thread_cpu_ns() - start) / n / 1e3;
    *max_us = (double)longest / 1e3;
    g_wall_total_us = (double)wall / 1e3;
}

static void sigcost(int n) {
    struct sigaction sa = {0}, old;
    sa.sa_sigaction = noop_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, &old);
    double sig_mean, sig_max, none_mean, none_max;
    unsigned long sig_hist[HIST_N], none_hist[HIST_N];
    time_tgkill(0, n, &none_mean, &none_max, none_hist); /* warm up, then measure both */
    time_tgkill(SIGUSR2, n, &sig_mean, &sig_max, sig_hist);
    double sig_wall_total = g_wall_total_us;
    time_tgkill(0, n, &none_mean, &none_max, none_hist);
    sigaction(SIGUSR2, &old, NULL);
    printf("{\"sigcost\":{\"n\":%d,\"signal_us\":%.3f,\"signal_max_us\":%.1f,\"no_signal_us\":%.3f,"
           "\"delivery_us\":%.3f,\"signal_wall_total_us\":%.1f,\"signal_histogram_us\":[",
           n, sig_mean, sig_max, none_mean, sig_mean - none_mean, sig_wall_total);
    for (size_t b = 0; b < HIST_N; b++) {
        if (b < HIST_N - 1)
            printf("%s[%u,%lu]", b ? "," : "", hist_edges[b], sig_hist[b]);
        else
            printf(",[null,%lu]", sig_hist[b]);
    }
    printf("]}}\n");
}

int main(int argc, char **argv) {
    int blocked = 0, spin_u = 0, spin_p = 0, gap_u = 0, gap_p = 0, stack_kb = 256;
    /* Options are --name=value: `graft run PROGRAM --name value` reorders the arguments (the
     * value ends up before the option), and `graft run -- PROGRAM ...` appends a stray "--". */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) continue;
        const char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "threads: expected --name=value, got %s\n", argv[i]);
            return 2;
        }
        int v = atoi(eq + 1);
        size_t n = (size_t)(eq - argv[i]);
#define OPT(s) (n == strlen(s) && !strncmp(argv[i], s, n))
        if (OPT("--blocked")) blocked = v;
        else if (OPT("--depth")) g_depth = v;
        else if (OPT("--spin-unpatched")) spin_u = v;
        else if (OPT("--spin-patched")) spin_p = v;
        else if (OPT("--gap-unpatched")) gap_u = v;
        else if (OPT("--gap-patched")) gap_p = v;
        else if (OPT("--stack-kb")) stack_kb = v;
        else {
            fprintf(stderr, "threads: unknown option %s\n", argv[i]);
            return 2;
        }
#undef OPT
    }
    if (gap_u + gap_p > MAX_GAP_THREADS) return 2;
    if (pipe(g_pipe)) return 1;
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(g_epfd, EPOLL_CTL_ADD, g_pipe[0], &ev);
    pthread_attr_init(&g_attr);
    pthread_attr_setstacksize(&g_attr, (size_t)stack_kb * 1024);
    double t0 = now_ns();
    for (int i = 0; i < blocked; i++) spawn(i % 3, NULL);
    for (int i = 0; i < spin_u; i++) spawn(K_SPIN_UNPATCHED, NULL);
    for (int i = 0; i < spin_p; i++) spawn(K_SPIN_PATCHED, NULL);
    for (int i = 0; i < gap_u + gap_p; i++) {
        g_gap[g_ngap].kind = i < gap_u ? K_GAP_UNPATCHED : K_GAP_PATCHED;
        spawn(g_gap[g_ngap].kind, &g_gap[g_ngap]);
        g_ngap++;
    }
    long total = blocked + spin_u + spin_p + gap_u + gap_p;
    while (__atomic_load_n(&g_arrived, __ATOMIC_ACQUIRE) < total) usleep(1000);
    /* Every blocked thread asleep in its system call (spinners and the agent's worker, which
     * may be awake, are allowed for). */
    int allowed = spin_u + spin_p + gap_u + gap_p + 1;
    for (int tries = 0; tries < 2000 && count_awake() > allowed; tries++) usleep(2000);
    printf("{\"ready\":true,\"pid\":%d,\"threads\":%ld,\"depth\":%d,\"spawn_ms\":%.1f}\n", (int)getpid(), total,
           g_depth, (now_ns() - t0) / 1e6);
    fflush(stdout);
    char line[128];
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "quit", 4)) break;
        if (!strncmp(line, "window", 6)) {
            uint32_t w = __atomic_add_fetch(&g_window, 1, __ATOMIC_ACQ_REL);
            for (int i = 0; i < g_ngap; i++)
                while (__atomic_load_n(&g_gap[i].acked, __ATOMIC_ACQUIRE) != w) usleep(200);
            printf("{\"window\":%u,\"gaps\":[", w);
            for (int i = 0; i < g_ngap; i++) print_gap(&g_gap[i], i == 0);
            printf("]}\n");
        } else if (!strncmp(line, "sigcost ", 8)) {
            int n = atoi(line + 8);
            sigcost(n > 0 ? n : 1000);
        } else {
            printf("{\"error\":\"unknown command\"}\n");
        }
        fflush(stdout);
    }
    _exit(0);
}
