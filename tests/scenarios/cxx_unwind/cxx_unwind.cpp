// cxx_unwind: C++ exceptions and pthread_cancel through patched functions.
//
// may_throw(x) throws for x < 0 (the exception starts inside the patched function);
// pass_through(x) calls thrower(), which throws, so the exception passes through the patched
// function's frame and destroys its local Guard. blocker() blocks in read(), a cancellation
// point, with a local object whose destructor records which version was unwound.
//
// stdin commands:
//   value        -> "may_throw(5)=N"  (6 in version 1)
//   throw        -> "caught may_throw <msg>" and "caught pass_through <msg> guards=<v1>,<v2>"
//   enter ID     -> a new thread enters blocker(): "blocking ID version V"
//   cancel ID    -> pthread_cancel + join: "cancelled ID result=canceled dtor=V handler=H"
//   stats        -> "stats thrown=N caught=N wrong=N v1=N v2=N"  (the throwing workers)
//   quit
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include "cxx_unwind_shared.h"

extern "C" {
volatile int g_base = 1;
UnwindCounters g_counters;
}

std::atomic<long> g_thrown, g_caught, g_wrong, g_seen_v1, g_seen_v2;

struct Guard {
    ~Guard() { g_counters.guard_dtors[1].fetch_add(1); }
};

// Not patched: the exception source for pass_through().
__attribute__((noinline)) void thrower(int version) {
    throw std::runtime_error("thrown below v" + std::to_string(version));
}

extern "C" __attribute__((noinline)) int may_throw(int x) {
    if (x < 0) throw std::runtime_error("may_throw v1");
    return x + g_base;
}

// C++ linkage: patched under its mangled name, _Z12pass_throughi.
__attribute__((noinline)) int pass_through(int x) {
    Guard g;
    if (x < 0) thrower(1);
    return x + g_base;
}

struct BlockerLocal {
    BlockSlot *s;
    ~BlockerLocal() { s->dtor.store(1); }
};

extern "C" __attribute__((noinline)) void blocker(BlockSlot *s) {
    BlockerLocal local{s};
    s->version.store(1);
    // The cancellation is meant for read(), not for the fflush that tells the test we are here:
    // clang marks the stdio calls as not throwing, so a cancellation inside them ends in
    // std::terminate (no call-site entry to unwind through).
    int old_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_state);
    std::printf("blocking %d version 1\n", s->id);
    std::fflush(stdout);
    pthread_setcancelstate(old_state, nullptr);
    char c;
    for (;;) {
        ssize_t n = read(s->fd, &c, 1);  // a cancellation point; nobody writes
        if (n == 0) break;
    }
}

static void cleanup_handler(void *arg) { static_cast<BlockSlot *>(arg)->handler.store(1); }

static void *blocker_thread(void *arg) {
    auto *s = static_cast<BlockSlot *>(arg);
    pthread_cleanup_push(cleanup_handler, s);
    blocker(s);
    pthread_cleanup_pop(0);
    return nullptr;
}

// Workers throw through both functions all the time; each exception must be caught here, and
// its message must name the version of the function it came from.
static void *thrower_worker(void *) {
    for (long i = 0;; i++) {
        try {
            g_thrown.fetch_add(1);
            if (i & 1) may_throw(-1);
            else pass_through(-1);
            g_wrong.fetch_add(1);  // returned instead of throwing
        } catch (const std::runtime_error &e) {
            g_caught.fetch_add(1);
            const char *m = e.what();
            if (std::strstr(m, "v1")) g_seen_v1.fetch_add(1);
            else if (std::strstr(m, "v2")) g_seen_v2.fetch_add(1);
            else g_wrong.fetch_add(1);
        } catch (...) {
            g_wrong.fetch_add(1);
        }
    }
    return nullptr;
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? std::atoi(argv[1]) : 2;
    pthread_t t;
    for (int i = 0; i < workers; i++) pthread_create(&t, nullptr, thrower_worker, nullptr);
    std::map<int, std::pair<pthread_t, BlockSlot *>> blocked;
    std::printf("ready %d\n", (int)getpid());
    std::fflush(stdout);
    char line[128];
    while (std::fgets(line, sizeof line, stdin)) {
        int id = 0;
        if (!std::strncmp(line, "quit", 4)) break;
        if (!std::strncmp(line, "value", 5)) {
            std::printf("may_throw(5)=%d\n", may_throw(5));
        } else if (!std::strncmp(line, "throw", 5)) {
            try {
                may_throw(-1);
                std::printf("no exception from may_throw\n");
            } catch (const std::exception &e) {
                std::printf("caught may_throw %s\n", e.what());
            }
            try {
                pass_through(-1);
                std::printf("no exception from pass_through\n");
            } catch (const std::exception &e) {
                std::printf("caught pass_through %s\n", e.what());
            }
        } else if (std::sscanf(line, "enter %d", &id) == 1) {
            int p[2];
            if (pipe(p) != 0) return 1;
            auto *s = new BlockSlot{id, p[0], {0}, {0}, {0}};
            pthread_t bt;
            pthread_create(&bt, nullptr, blocker_thread, s);
            blocked[id] = {bt, s};
        } else if (std::sscanf(line, "cancel %d", &id) == 1) {
            auto it = blocked.find(id);
            if (it == blocked.end()) {
                std::printf("no thread %d\n", id);
            } else {
                void *res = nullptr;
                pthread_cancel(it->second.first);
                pthread_join(it->second.first, &res);
                BlockSlot *s = it->second.second;
                std::printf("cancelled %d result=%s dtor=%d handler=%d\n", id,
                            res == PTHREAD_CANCELED ? "canceled" : "returned", s->dtor.load(),
                            s->handler.load());
            }
        } else if (!std::strncmp(line, "stats", 5)) {
            std::printf("stats thrown=%ld caught=%ld wrong=%ld v1=%ld v2=%ld guards=%ld,%ld\n",
                        g_thrown.load(), g_caught.load(), g_wrong.load(), g_seen_v1.load(), g_seen_v2.load(),
                        g_counters.guard_dtors[1].load(), g_counters.guard_dtors[2].load());
        }
        std::fflush(stdout);
    }
    return 0;
}
