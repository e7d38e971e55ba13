/* test_klp_syscall (kernel: test_modules/test_klp_syscall.c): replaces klp_getpid() of
 * klp_syscall_host (the kernel's patch replaces the getpid system call) with a version that, the
 * first time a thread runs it, removes that thread's tid from the host's klp_tids[] and
 * decrements npids, so the host sees when every hammering thread has switched to the new code
 * (tests/scenarios/klp/klp_syscall_test.cpp). */
#define _GNU_SOURCE
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <graft/graft.h>

enum { kMaxThreads = 64 };

static pid_t *klp_tids;
static int *npids;
GRAFT_REF(NULL, "klp_tids", 0, klp_tids);
GRAFT_REF(NULL, "npids", 0, npids);

static long lp_klp_getpid(void) {
    pid_t me = (pid_t)syscall(SYS_gettid);
    if (__atomic_load_n(npids, __ATOMIC_SEQ_CST) > 0) {
        for (int i = 0; i < kMaxThreads; i++) {
            pid_t t = me;
            /* Each entry is cleared once, by its own thread: npids counts each thread once. */
            if (__atomic_compare_exchange_n(&klp_tids[i], &t, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
                __atomic_sub_fetch(npids, 1, __ATOMIC_SEQ_CST);
                break;
            }
        }
    }
    return syscall(SYS_getpid);
}

static struct graft_func funcs[] = {{"klp_getpid", (void *)lp_klp_getpid, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {"test_klp_syscall", objs, NULL, false};
GRAFT_PATCH(patch);
