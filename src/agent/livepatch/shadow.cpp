// Shadow variables (kernel/livepatch/shadow.c): data attached to an existing object, keyed by
// <object pointer, id>.
//
// Writers (alloc, free) are serialised by g_shadow_mutex. Readers (graft_shadow_get) take no
// lock: buckets are singly linked lists whose links are published with release stores and read
// with acquire loads, and a removed node is only unlinked, never reused, until a grace period
// (synchronize_threads) has passed, so a reader that is walking it stays safe. That makes
// graft_shadow_get usable from any thread, including signal handlers.
#include "agent/livepatch/shadow.hpp"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"
#include "graft/graft.h"

namespace graft {
std::mutex g_shadow_mutex;  // serialises writers; readers never take it
namespace {

struct Shadow {
    std::atomic<Shadow *> next{nullptr};
    // Links unlinked nodes waiting for their grace period (free_matching): freeing must not
    // allocate, or a failed allocation would leave nodes whose destructor already ran.
    Shadow *dead_next = nullptr;
    void *obj;
    unsigned long id;
    alignas(16) unsigned char data[];
};

constexpr size_t kBuckets = 4096;
std::atomic<Shadow *> g_buckets[kBuckets];

size_t bucket(void *obj) {
    return (reinterpret_cast<uintptr_t>(obj) >> 4) % kBuckets;
}

Shadow *find(void *obj, unsigned long id) {
    for (Shadow *s = g_buckets[bucket(obj)].load(std::memory_order_acquire); s;
         s = s->next.load(std::memory_order_acquire))
        if (s->obj == obj && s->id == id) return s;
    return nullptr;
}

void *alloc(void *obj, unsigned long id, size_t size, graft_shadow_ctor_t ctor, void *ctor_data,
            bool warn_on_exist) {
    ThreadSlot *me = self_slot();
    if (me) read_lock(me);
    Shadow *s = find(obj, id);
    if (me) read_unlock(me);
    if (s) {
        if (warn_on_exist) log_fmt("graft: Duplicate shadow variable <%p, %lx>", obj, id);
        return warn_on_exist ? nullptr : s->data;
    }
    // Allocate outside the lock (the kernel does the same with GFP flags); zero-filled. A size
    // the header would wrap is refused like a failed allocation.
    if (size > SIZE_MAX - sizeof(Shadow)) return nullptr;
    auto *n = static_cast<Shadow *>(std::calloc(1, sizeof(Shadow) + size));
    if (!n) return nullptr;
    std::lock_guard<std::mutex> g(g_shadow_mutex);
    if (Shadow *again = find(obj, id)) {
        std::free(n);
        if (warn_on_exist) {
            log_fmt("graft: Duplicate shadow variable <%p, %lx>", obj, id);
            return nullptr;
        }
        return again->data;
    }
    new (n) Shadow();
    n->obj = obj;
    n->id = id;
    if (ctor) {
        // Under the lock: the constructor runs at most once per <obj, id>.
        int rc = ctor(obj, n->data, ctor_data);
        if (rc) {
            log_fmt("graft: Failed to construct shadow variable <%p, %lx> (%d)", obj, id, rc);
            std::free(n);
            return nullptr;
        }
    }
    size_t b = bucket(obj);
    n->next.store(g_buckets[b].load(std::memory_order_relaxed), std::memory_order_relaxed);
    g_buckets[b].store(n, std::memory_order_release);  // pairs with the acquire in find()
    return n->data;
}

// Unlinks every node matching; frees them after a grace period. Caller holds g_shadow_mutex.
void free_matching(void *obj, bool any_obj, unsigned long id, graft_shadow_dtor_t dtor) {
    Shadow *dead = nullptr;
    size_t first = any_obj ? 0 : bucket(obj), last = any_obj ? kBuckets : bucket(obj) + 1;
    for (size_t b = first; b < last; b++) {
        std::atomic<Shadow *> *link = &g_buckets[b];
        for (Shadow *s = link->load(std::memory_order_relaxed); s;
             s = link->load(std::memory_order_relaxed)) {
            if (s->id == id && (any_obj || s->obj == obj)) {
                // Unlink only: s->next stays, so a reader standing on s continues past it.
                link->store(s->next.load(std::memory_order_relaxed), std::memory_order_release);
                if (dtor) dtor(s->obj, s->data);
                s->dead_next = dead;
                dead = s;
            } else {
                link = &s->next;
            }
        }
    }
    if (!dead) return;
    synchronize_threads();
    while (dead) {
        Shadow *next = dead->dead_next;
        std::free(dead);
        dead = next;
    }
}

}  // namespace
}  // namespace graft

extern "C" {

__attribute__((visibility("default"))) void *graft_shadow_get(void *obj, unsigned long id) {
    graft::ThreadSlot *me = graft::self_slot();
    if (me) graft::read_lock(me);
    graft::Shadow *s = graft::find(obj, id);
    if (me) graft::read_unlock(me);
    return s ? s->data : nullptr;
}

__attribute__((visibility("default"))) void *graft_shadow_alloc(void *obj, unsigned long id, size_t size,
                                                                graft_shadow_ctor_t ctor, void *ctor_data) {
    return graft::alloc(obj, id, size, ctor, ctor_data, true);
}

__attribute__((visibility("default"))) void *graft_shadow_get_or_alloc(void *obj, unsigned long id,
                                                                       size_t size, graft_shadow_ctor_t ctor,
                                                                       void *ctor_data) {
    return graft::alloc(obj, id, size, ctor, ctor_data, false);
}

__attribute__((visibility("default"))) void graft_shadow_free(void *obj, unsigned long id,
                                                              graft_shadow_dtor_t dtor) {
    // The grace period's snapshot may fail to allocate: the nodes stay unlinked and unfreed
    // (a leak), and the patch's C caller sees no exception.
    try {
        std::lock_guard<std::mutex> g(graft::g_shadow_mutex);
        graft::free_matching(obj, false, id, dtor);
    } catch (...) {
    }
}

__attribute__((visibility("default"))) void graft_shadow_free_all(unsigned long id,
                                                                  graft_shadow_dtor_t dtor) {
    try {  // as graft_shadow_free
        std::lock_guard<std::mutex> g(graft::g_shadow_mutex);
        graft::free_matching(nullptr, true, id, dtor);
    } catch (...) {
    }
}

}  // extern "C"
