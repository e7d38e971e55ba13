// New threads start in their creator's patch state (klp_copy_process; docs/design.md §4.10).
//
// pthread_create is interposed: the child claims its slot and copies its creator's state word
// before the start routine runs, so no code of the new thread ever runs in a state its creator
// was not in. The slot is released by a thread-specific-data destructor at thread exit, which
// also runs for pthread_exit and cancellation.
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "agent/threads/thread_state.hpp"

namespace graft {
namespace {
using create_fn = int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
std::atomic<create_fn> g_real_create{nullptr};
pthread_key_t g_exit_key;
std::atomic<bool> g_key_ready{false};

struct Birth {
    void *(*start)(void *);
    void *arg;
    uint64_t creator_word;
};

void on_thread_exit(void *) {
    release_self_slot();
}

void *child_start(void *p) {
    Birth b = *static_cast<Birth *>(p);
    std::free(p);
    claim_for_new_thread(b.creator_word);
    return b.start(b.arg);
}

create_fn real_create() {
    create_fn f = g_real_create.load(std::memory_order_acquire);
    if (!f) {
        f = reinterpret_cast<create_fn>(dlsym(RTLD_NEXT, "pthread_create"));
        g_real_create.store(f, std::memory_order_release);
    }
    return f;
}
}  // namespace

void thread_birth_init() {
    if (!g_key_ready.load() && pthread_key_create(&g_exit_key, on_thread_exit) == 0)
        g_key_ready.store(true, std::memory_order_release);
    real_create();
}

void set_real_thread_create(void *fn) {
    // Release: pairs with real_create()'s acquire in a thread that reaches the wrapper through a
    // GOT slot redirected after this store.
    g_real_create.store(reinterpret_cast<create_fn>(fn), std::memory_order_release);
}

void claim_for_new_thread(uint64_t creator_word) {
    ThreadSlot *s = self_slot();
    if (!s) return;
    // The creator's word names the generation it belongs to; if the generation moved on since,
    // effective_state() ignores it and the thread starts in the initial state, as every thread
    // does at klp_init_transition().
    s->word.store(creator_word, std::memory_order_release);
    if (g_key_ready.load(std::memory_order_acquire))
        pthread_setspecific(g_exit_key, reinterpret_cast<void *>(1));
}

}  // namespace graft

// The body, under a hidden name that birth_redirect.cpp can take the address of: `pthread_create`
// itself, named from inside the agent, is whatever the process's lookup finds first.
extern "C" __attribute__((visibility("hidden"))) int graft_thread_birth_create(pthread_t *thread,
                                                                               const pthread_attr_t *attr,
                                                                               void *(*start)(void *),
                                                                               void *arg) {
    auto real = graft::real_create();
    if (!real) return EAGAIN;
    auto *b = static_cast<graft::Birth *>(std::malloc(sizeof(graft::Birth)));
    if (!b) return real(thread, attr, start, arg);  // degrade: the child starts in the initial state
    graft::ThreadSlot *me = graft::self_slot();
    uint64_t word = 0;
    if (me) {
        // An approval the creator has not consumed yet holds here too (no selector entry since
        // its stack was seen clean): take it now, so the child inherits the switched state.
        int goal = graft::g_view.target_state.load(std::memory_order_acquire);
        uint32_t epoch = graft::g_view.epoch.load(std::memory_order_acquire);
        uint32_t seq = me->seq.load(std::memory_order_relaxed);
        if (goal != graft::kIdle && me->nest == 0 &&
            me->approved.load(std::memory_order_acquire) == graft::make_approval(epoch, seq))
            graft::set_own_state(me, goal);
        // Copy the creator's *effective* state for the current generation.
        uint32_t gen = graft::g_view.gen.load(std::memory_order_acquire);
        word = graft::make_word(gen, graft::effective_state(me));
    }
    *b = graft::Birth{start, arg, word};
    int rc = real(thread, attr, graft::child_start, b);
    if (rc != 0) std::free(b);
    return rc;
}

extern "C" __attribute__((visibility("default"))) int pthread_create(pthread_t *, const pthread_attr_t *,
                                                                     void *(*)(void *), void *)
    __attribute__((alias("graft_thread_birth_create")));
