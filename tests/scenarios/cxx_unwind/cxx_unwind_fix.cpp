// cxx_unwind_fix: version 2 of may_throw(), pass_through() and blocker(), in C++: exceptions
// start in, or pass through, the patch's new functions, and cancellation unwinds them.
#include <graft/graft.h>
#include <unistd.h>

#include <pthread.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "cxx_unwind_shared.h"

static void (*thrower_p)(int);
GRAFT_REF(NULL, "_Z7throweri", 0, thrower_p);
static volatile int *base_p;
GRAFT_REF(NULL, "g_base", 0, base_p);
static UnwindCounters *counters_p;
GRAFT_REF(NULL, "g_counters", 0, counters_p);

namespace {

struct Guard2 {
    ~Guard2() { counters_p->guard_dtors[2].fetch_add(1); }
};

struct BlockerLocal2 {
    BlockSlot *s;
    ~BlockerLocal2() { s->dtor.store(2); }
};

int may_throw_v2(int x) {
    if (x < 0) throw std::runtime_error("may_throw v2");
    return x + 2 * *base_p;
}

int pass_through_v2(int x) {
    Guard2 g;
    if (x < 0) thrower_p(2);
    return x + 2 * *base_p;
}

void blocker_v2(BlockSlot *s) {
    BlockerLocal2 local{s};
    s->version.store(2);
    int old_state;  // cancellable in read() only (cxx_unwind.cpp's blocker says why)
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);
    std::printf("blocking %d version 2\n", s->id);
    std::fflush(stdout);
    pthread_setcancelstate(old_state, nullptr);
    char c;
    for (;;) {
        ssize_t n = read(s->fd, &c, 1);
        if (n == 0) break;
    }
}

struct graft_func funcs[] = {{"may_throw", (void *)may_throw_v2, 0},
                             {"_Z12pass_throughi", (void *)pass_through_v2, 0},
                             {"blocker", (void *)blocker_v2, 0},
                             {}};
struct graft_object objs[] = {{NULL, funcs, {}}, {}};
struct graft_patch patch = {NULL, objs, NULL, false};

}  // namespace

// GRAFT_PATCH(patch) at file scope does not export its symbols from a C++ translation unit
// (C++ linkage, and a const with internal linkage); see cxx_unwind_cxx_macro.cpp, which the
// CxxUnwind.PatchWrittenInCxxLoads test loads. Until that is fixed, give them C linkage here.
extern "C" const unsigned graft_patch_abi;
extern "C" {
GRAFT_PATCH(patch);
}
