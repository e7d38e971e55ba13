/* stuck_fix: hold() v2 (blocks like v1, reports v2) and version() returns 2. */
#include <graft/graft.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t *hold_mu;
static pthread_cond_t *hold_cv;
static volatile int *release_gen;
static void (*say)(const char *fmt, ...);
GRAFT_REF(NULL, "hold_mu", 0, hold_mu);
GRAFT_REF(NULL, "hold_cv", 0, hold_cv);
GRAFT_REF(NULL, "release_gen", 0, release_gen);
GRAFT_REF(NULL, "say", 0, say);

static int hold_v2(const char *who) {
    pthread_mutex_lock(hold_mu);
    int gen = *release_gen;
    say("holder %s in hold v2 tid %ld\n", who, (long)syscall(SYS_gettid));
    while (*release_gen == gen) pthread_cond_wait(hold_cv, hold_mu);
    pthread_mutex_unlock(hold_mu);
    return 2;
}

static int version_v2(void) { return 2; }

static struct graft_func funcs[] = {{"hold", (void *)hold_v2, 0}, {"version", (void *)version_v2, 0}, {0}};
static struct graft_object objs[] = {{NULL, funcs, {0}}, {0}};
static struct graft_patch patch = {NULL, objs, NULL, false};
GRAFT_PATCH(patch);
