/* test_klp_callbacks_busy (kernel: selftests/livepatch/test_modules/test_klp_callbacks_busy.c):
 * its constructor starts a thread in busymod_work_func(), which test_klp_callbacks_demo patches.
 * With BLOCK_TRANSITION=Y in the environment when it loads (the kernel's block_transition=Y
 * parameter), the thread stays inside busymod_work_func() until the library is unloaded, so a
 * patching transition cannot finish for that thread: the kernel's kworker sleeping in a
 * to-be-patched function. Otherwise the constructor waits for the thread to finish, as the
 * kernel's init flushes its work. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern void graft_log(const char *fmt, ...) __attribute__((weak));

#define pr_info(fmt, ...) \
    do { \
        if (graft_log) graft_log("test_klp_callbacks_busy: " fmt, ##__VA_ARGS__); \
    } while (0)

/* Read once when the library loads; cleared by the destructor to let the thread go. */
static atomic_bool block_transition;

static pthread_t work;
static bool work_joined;
static pthread_mutex_t started_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started_cv = PTHREAD_COND_INITIALIZER;
static bool started;

/* Not static: the patch names it, and it must stay a function of its own. */
__attribute__((noinline)) void *busymod_work_func(void *arg) {
    (void)arg;
    pr_info("%s enter", __func__);
    pthread_mutex_lock(&started_mu);
    started = true;
    pthread_cond_signal(&started_cv);
    pthread_mutex_unlock(&started_mu);
    /* The work itself: the kernel's module sleeps in msleep(20) steps the same way. */
    while (atomic_load(&block_transition)) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    pr_info("%s exit", __func__);
    return NULL;
}

static void flush_work(void) {
    if (work_joined) return;
    pthread_join(work, NULL);
    work_joined = true;
}

__attribute__((constructor)) static void test_klp_callbacks_busy_init(void) {
    const char *b = getenv("BLOCK_TRANSITION");
    atomic_store(&block_transition, b && (!strcmp(b, "Y") || !strcmp(b, "1")));
    pr_info("%s", __func__);
    if (pthread_create(&work, NULL, busymod_work_func, NULL) != 0) {
        pr_info("cannot start the work thread");
        work_joined = true;
        return;
    }
    pthread_mutex_lock(&started_mu);
    while (!started) pthread_cond_wait(&started_cv, &started_mu);
    pthread_mutex_unlock(&started_mu);
    if (!atomic_load(&block_transition)) flush_work();
}

__attribute__((destructor)) static void test_klp_callbacks_busy_exit(void) {
    atomic_store(&block_transition, false);
    flush_work();
    pr_info("%s", __func__);
}
