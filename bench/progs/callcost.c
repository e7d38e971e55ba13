/* callcost: what one call of a small function costs through each kind of graft entry, against a
 * direct call of a function of the same shape in the same binary, measured side by side.
 *
 * Runs under `graft run`. The driver (bench/driver.py) loads and disables patches with the real
 * `graft` command between phases, and tells this program on stdin what to measure:
 *   measure NAME PAIRS US      the main thread: PAIRS x (a loop of f_direct, a loop of f_NAME),
 *                              each loop lasting about US microseconds (see measure())
 *   measure_held NAME PAIRS US the same on the "held" thread, which never leaves hold_frame()
 *   kref_transition 0|1        the reference handler's func->transition flag
 *   quit
 * Each command answers with one JSON line. NAME: direct gate done odone lodone stack trans ltrans
 * lgate ljump lgtrans ljtrans jdone kref jmp5 g2.
 *
 * Functions (all `x + 1`, one lea and a ret; a patch's version returns x + 2, x + 10 + k...):
 *   f_direct  built without a patchable entry: the baseline
 *   f_gate    patchable entry, never patched (gate closed: a 2-byte nop)
 *   f_done    patched by p_done (transition completed: gate -> jmp *prefix -> new function)
 *   f_stack   patched by p_stack1..p_stack5 stacked on each other
 *   f_odone   no patchable entry, patched by p_done too (graft rewrites its own entry: after
 *             the transition, jmp rel32 -> jmp *slot -> new function)
 *   f_lodone  the same in libccord.so (bench/progs/ccord.c), measured against f_ldirect there:
 *             the library and the patch share a region, so the settled entry is one jmp rel32
 *   f_ltrans  in libccord.so too, patched by p_trans (a rewritten entry in a transition)
 *   f_lgate, f_ljump, f_lgtrans, f_ljtrans  in libccord.so: graft's two entry layouts (gate and
 *             jump, `graft flags target --entry`), patched by p_done and p_trans
 *   f_jdone   the jump layout in this program, patched by p_done: the patch lies beyond a rel32's
 *             reach, so jmp rel32 -> the block's jmp *slot -> new function
 *   f_trans   patched by p_trans, which also patches blocker_fn() and hold_frame(): a thread
 *             blocked in blocker_fn() keeps p_trans's transition pending, the held thread runs
 *             its measurements inside the old hold_frame() and so can never switch
 *   f_kref    the kernel's approach (bench/progs/kref.S): `call` to an ftrace-like trampoline
 *             that saves registers, calls a C handler (klp_ftrace_handler) on every call,
 *             rewrites its return address and `ret`s into the new function
 *   f_jmp5    reference: entry = one `jmp rel32` to the new function (entryref.S)
 *   f_g2      reference: graft's gate + prefix layout written by hand (entryref.S)
 * Each loop's result (s after N calls of s = f(s), divided by N) says which version ran; the
 * driver checks it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOPATCH __attribute__((noipa, patchable_function_entry(0, 0)))
#define TARGET __attribute__((noipa))

NOPATCH uint64_t f_direct(uint64_t x) { return x + 1; }
TARGET uint64_t f_gate(uint64_t x) { return x + 1; }
TARGET uint64_t f_done(uint64_t x) { return x + 1; }
TARGET uint64_t f_stack(uint64_t x) { return x + 1; }
TARGET uint64_t f_trans(uint64_t x) { return x + 1; }
/* No patchable entry: graft rewrites its own entry (docs/design.md §2.6). The 5-byte nop gives
 * the jump whole instructions to cover before the ret (x + 1 alone is 4 bytes and a ret). */
NOPATCH uint64_t f_odone(uint64_t x) {
    __asm__ volatile(".byte 0x0f, 0x1f, 0x44, 0x00, 0x00");
    return x + 1;
}
/* The jump layout (`graft flags target --entry jump`). */
__attribute__((noipa, patchable_function_entry(5, 0))) uint64_t f_jdone(uint64_t x) { return x + 1; }
uint64_t f_kref(uint64_t x); /* kref.S */
void kref_set_transition(int on);
uint64_t f_jmp5(uint64_t x); /* entryref.S */
uint64_t f_g2(uint64_t x);
uint64_t f_ref_new(uint64_t x);
extern uint64_t ref_g2_slot;

/* Identical loops, each 64-byte aligned, each calling its function directly. */
#define LOOP(fn)                                                                  \
    NOPATCH __attribute__((aligned(64))) static uint64_t loop_##fn(uint64_t n) { \
        uint64_t s = 0;                                                           \
        for (uint64_t i = 0; i < n; i++) s = fn(s);                               \
        return s;                                                                 \
    }
LOOP(f_direct)
LOOP(f_gate)
LOOP(f_done)
LOOP(f_stack)
LOOP(f_trans)
LOOP(f_odone)
LOOP(f_jdone)
LOOP(f_kref)
LOOP(f_jmp5)
LOOP(f_g2)

typedef uint64_t (*loop_fn)(uint64_t);
uint64_t loop_f_ldirect(uint64_t n); /* libccord.so */
uint64_t loop_f_lodone(uint64_t n);
uint64_t loop_f_ltrans(uint64_t n);
uint64_t loop_f_lgate(uint64_t n);
uint64_t loop_f_ljump(uint64_t n);
uint64_t loop_f_lgtrans(uint64_t n);
uint64_t loop_f_ljtrans(uint64_t n);

static loop_fn loop_by_name(const char *name) {
    if (!strcmp(name, "direct")) return loop_f_direct;
    if (!strcmp(name, "gate")) return loop_f_gate;
    if (!strcmp(name, "done")) return loop_f_done;
    if (!strcmp(name, "stack")) return loop_f_stack;
    if (!strcmp(name, "trans")) return loop_f_trans;
    if (!strcmp(name, "odone")) return loop_f_odone;
    if (!strcmp(name, "lodone")) return loop_f_lodone;
    if (!strcmp(name, "ltrans")) return loop_f_ltrans;
    if (!strcmp(name, "lgate")) return loop_f_lgate;
    if (!strcmp(name, "ljump")) return loop_f_ljump;
    if (!strcmp(name, "lgtrans")) return loop_f_lgtrans;
    if (!strcmp(name, "ljtrans")) return loop_f_ljtrans;
    if (!strcmp(name, "jdone")) return loop_f_jdone;
    if (!strcmp(name, "kref")) return loop_f_kref;
    if (!strcmp(name, "jmp5")) return loop_f_jmp5;
    if (!strcmp(name, "g2")) return loop_f_g2;
    return NULL;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(double *v, int n, double q) {
    double *c = malloc(sizeof(double) * n);
    memcpy(c, v, sizeof(double) * n);
    qsort(c, n, sizeof(double), cmp_double);
    double pos = q * (n - 1);
    int i = (int)pos;
    double r = i + 1 < n ? c[i] + (c[i + 1] - c[i]) * (pos - i) : c[i];
    free(c);
    return r;
}

#define MAX_REPS 1001

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One timed loop: ns per call, and whether the thread kept its CPU throughout (wall time and
 * this thread's CPU time advance together unless it was descheduled; 20 us of slack allows for
 * interrupts). Time the thread spends in graft (signal handler, selector) is CPU time: kept. */
static double timed(loop_fn fn, uint64_t n, uint64_t *check, int *preempted) {
    double c0 = cpu_ns(), t0 = now_ns();
    *check = fn(n);
    double t1 = now_ns(), c1 = cpu_ns();
    if ((t1 - t0) - (c1 - c0) > 20000) *preempted = 1;
    return (t1 - t0) / n;
}

/* Calls per loop so that one loop lasts about loop_us. */
static uint64_t calibrate(loop_fn fn, double loop_us) {
    uint64_t n = 10000, check;
    int p = 0;
    double best = 1e9;
    for (int i = 0; i < 5; i++) {
        double t = timed(fn, n, &check, &p);
        if (t < best) best = t;
    }
    double calls = loop_us * 1000 / best;
    if (calls < 2000) calls = 2000;
    if (calls > 1e8) calls = 1e8;
    return (uint64_t)calls;
}

/* PAIRS pairs of (loop of f_direct, loop of f_NAME), alternating which runs first, each loop
 * lasting about LOOP_US. A pair in which either loop lost the CPU is measured again (up to
 * 10 x PAIRS attempts): on a shared machine, a loop that was descheduled measures the other
 * tenants, not the call. Figures are ns per call over the kept pairs. */
static void measure(const char *name, int reps, double loop_us, char *out, size_t outsz) {
    loop_fn var = loop_by_name(name);
    if (!var || reps < 1 || reps > MAX_REPS || loop_us <= 0) {
        snprintf(out, outsz, "{\"error\":\"bad measure arguments\"}");
        return;
    }
    /* A library's function against the library's own direct call. */
    /* A library function against the library's own direct call (names starting with 'l'). */
    loop_fn loop_f_base = name[0] == 'l' ? loop_f_ldirect : loop_f_direct;
    static __thread double base[MAX_REPS], vr[MAX_REPS], diff[MAX_REPS], ratio[MAX_REPS];
    uint64_t cb = 0, cv = 0;
    /* Warm up: trains predictors, and lets a thread that can switch itself do so (graft's
     * selector tries a self-switch on a thread's first call and every 1024 calls after). */
    loop_f_base(100000);
    var(100000);
    uint64_t nb = calibrate(loop_f_base, loop_us), nv = calibrate(var, loop_us);
    int kept = 0, attempts = 0;
    while (kept < reps && attempts < 10 * reps) {
        int pre = 0;
        double b, v;
        if (attempts++ & 1) {
            v = timed(var, nv, &cv, &pre);
            b = timed(loop_f_base, nb, &cb, &pre);
        } else {
            b = timed(loop_f_base, nb, &cb, &pre);
            v = timed(var, nv, &cv, &pre);
        }
        if (pre) continue;
        base[kept] = b;
        vr[kept] = v;
        diff[kept] = v - b;
        ratio[kept] = v / b;
        kept++;
    }
    if (kept == 0) {
        snprintf(out, outsz, "{\"error\":\"every loop was preempted\"}");
        return;
    }
    snprintf(out, outsz,
             "{\"name\":\"%s\",\"tid\":%ld,\"reps\":%d,\"attempts\":%d,\"n_direct\":%llu,\"n\":%llu,"
             "\"base_ns\":%.4f,\"var_ns\":%.4f,\"delta_ns\":%.4f,\"delta_p10\":%.4f,\"delta_p90\":%.4f,"
             "\"ratio\":%.4f,\"base_min\":%.4f,\"var_min\":%.4f,\"check_base\":%.3f,\"check\":%.3f",
             name, (long)syscall(SYS_gettid), kept, attempts, (unsigned long long)nb, (unsigned long long)nv,
             quantile(base, kept, 0.5), quantile(vr, kept, 0.5), quantile(diff, kept, 0.5),
             quantile(diff, kept, 0.1), quantile(diff, kept, 0.9), quantile(ratio, kept, 0.5),
             quantile(base, kept, 0.0), quantile(vr, kept, 0.0), (double)cb / nb, (double)cv / nv);
    /* every kept pair, in order: "pairs":[[direct, variant], ...] (ns per call) */
    size_t len = strlen(out);
    len += (size_t)snprintf(out + len, outsz - len, ",\"pairs\":[");
    for (int r = 0; r < kept && len + 40 < outsz; r++)
        len += (size_t)snprintf(out + len, outsz - len, "%s[%.3f,%.3f]", r ? "," : "", base[r], vr[r]);
    snprintf(out + len, outsz - len, "]}");
}

/* ---- the held thread: lives inside hold_frame(), which p_trans patches ---------------------- */
static int hold_cmd[2], hold_ack[2], block_pipe[2];
static char hold_name[32];
static int hold_reps;
static double hold_us;
static char hold_out[65536];

TARGET void hold_frame(void) {
    for (;;) {
        char c;
        ssize_t r = read(hold_cmd[0], &c, 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || c == 'q') return;
        measure(hold_name, hold_reps, hold_us, hold_out, sizeof hold_out);
        while (write(hold_ack[1], "a", 1) < 0 && errno == EINTR) {
        }
    }
}

/* The blocker: sleeps in read() inside blocker_fn() (patched by p_trans) until quit. */
TARGET void blocker_fn(void) {
    char c;
    while (read(block_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
}

static pid_t g_tid_held, g_tid_blocker;

static void *held_main(void *arg) {
    (void)arg;
    __atomic_store_n(&g_tid_held, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    hold_frame();
    return NULL;
}

static void *blocker_main(void *arg) {
    (void)arg;
    __atomic_store_n(&g_tid_blocker, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    blocker_fn();
    return NULL;
}

/* Points f_g2's prefix at f_ref_new, before any other thread exists. */
static int init_g2(void) {
    uintptr_t pg = (uintptr_t)&ref_g2_slot & ~(uintptr_t)4095;
    if (mprotect((void *)pg, 8192, PROT_READ | PROT_WRITE | PROT_EXEC)) return -1;
    __atomic_store_n(&ref_g2_slot, (uint64_t)(uintptr_t)f_ref_new, __ATOMIC_RELEASE);
    return mprotect((void *)pg, 8192, PROT_READ | PROT_EXEC);
}

int main(void) {
    if (init_g2()) {
        perror("callcost: mprotect");
        return 1;
    }
    if (pipe(hold_cmd) || pipe(hold_ack) || pipe(block_pipe)) return 1;
    pthread_t th, tb;
    pthread_create(&th, NULL, held_main, NULL);
    pthread_create(&tb, NULL, blocker_main, NULL);
    while (!__atomic_load_n(&g_tid_held, __ATOMIC_ACQUIRE) || !__atomic_load_n(&g_tid_blocker, __ATOMIC_ACQUIRE))
        usleep(1000);
    usleep(20000); /* both are asleep in their functions by now */
    printf("{\"ready\":true,\"pid\":%d,\"tid_main\":%ld,\"tid_held\":%d,\"tid_blocker\":%d}\n", (int)getpid(),
           (long)syscall(SYS_gettid), g_tid_held, g_tid_blocker);
    fflush(stdout);
    static char line[256], out[65536];
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32] = "", name[32] = "";
        int reps = 0;
        double us = 0;
        int k = sscanf(line, "%31s %31s %d %lf", cmd, name, &reps, &us);
        if (k >= 1 && !strcmp(cmd, "quit")) break;
        if (k == 4 && !strcmp(cmd, "measure")) {
            measure(name, reps, us, out, sizeof out);
        } else if (k == 4 && !strcmp(cmd, "measure_held")) {
            snprintf(hold_name, sizeof hold_name, "%s", name);
            hold_reps = reps;
            hold_us = us;
            char c;
            if (write(hold_cmd[1], "m", 1) != 1) return 1;
            while (read(hold_ack[0], &c, 1) < 0 && errno == EINTR) {
            }
            snprintf(out, sizeof out, "%s", hold_out);
        } else if (k == 2 && !strcmp(cmd, "kref_transition")) {
            kref_set_transition(atoi(name));
            snprintf(out, sizeof out, "{\"ok\":true}");
        } else {
            snprintf(out, sizeof out, "{\"error\":\"unknown command\"}");
        }
        printf("%s\n", out);
        fflush(stdout);
    }
    if (write(hold_cmd[1], "q", 1) != 1) return 1;
    pthread_join(th, NULL);
    if (write(block_pipe[1], "q", 1) != 1) return 1;
    pthread_join(tb, NULL);
    return 0;
}
