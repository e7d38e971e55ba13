// The agent in a process it was attached to (docs/design.md §4.13).
#include "agent/service/attached.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "agent/proc/task_files.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/birth_redirect.hpp"
#include "agent/threads/thread_state.hpp"
#include "common/attach_record.hpp"

extern "C" {
// arch/x86_64/attach_return.S
void graft_attach_return();
}

namespace graft {
namespace {

// Written once by attach_init() on the borrowed thread, read by the same thread in
// graft_attach_restore_errno(): no other thread touches it.
int g_borrowed_errno = 0;

constexpr uintptr_t kMaxScan = 1u << 20;  // dlopen's frames between us and the record

// The record `graft attach` left above this thread's frames, if any (the scan reads the stack of
// callers, whose ASan red zones are not ours to check).
__attribute__((no_sanitize("address"))) attach::Record *find_record() {
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) != 0) return nullptr;
    void *lo = nullptr;
    size_t size = 0;
    int rc = pthread_attr_getstack(&a, &lo, &size);
    pthread_attr_destroy(&a);
    if (rc != 0) return nullptr;
    const auto here = reinterpret_cast<uintptr_t>(__builtin_frame_address(0)) & ~uintptr_t{15};
    const uintptr_t end = reinterpret_cast<uintptr_t>(lo) + size;
    const uintptr_t stop = end - here > kMaxScan ? here + kMaxScan : end;
    const pid_t me = current_tid();
    for (uintptr_t p = here; p + sizeof(attach::Record) <= stop; p += 16) {
        auto *r = reinterpret_cast<attach::Record *>(p);
        if (std::memcmp(r->magic, attach::kMagic, sizeof r->magic) != 0) continue;
        if (r->tid == me && r->check == attach::record_check(*r) && r->return_slot > here &&
            r->return_slot < p)
            return r;
    }
    return nullptr;
}

}  // namespace

bool attached_to_running_process() {
    Dl_info theirs{}, mine{};
    void *create = dlsym(RTLD_DEFAULT, "pthread_create");
    return create && dladdr(create, &theirs) &&
           dladdr(reinterpret_cast<void *>(&attached_to_running_process), &mine) &&
           theirs.dli_fbase != mine.dli_fbase;
}

void attach_init() {
    size_t n = adopt_existing_threads(list_tids());
    log_fmt("graft: attached to a running process; %zu other thread%s given graft state", n,
            n == 1 ? "" : "s");
    // Inside dlopen, which holds the loader's lock: no other load or unload is in flight.
    BirthRedirects b = redirect_thread_births(/*loader_locked=*/true);
    log_fmt(
        "graft: %zu pthread_create call slot%s now give%s new threads graft state at birth"
        " (%zu read-only, %zu already redirected by another tool)",
        b.redirected, b.redirected == 1 ? "" : "s", b.redirected == 1 ? "s" : "", b.read_only, b.foreign);
    if (b.left_writable)
        log_fmt("graft: warning: %zu RELRO page%s of GOT slots could not be made read-only again",
                b.left_writable, b.left_writable == 1 ? "" : "s");
    if (attach::Record *r = find_record()) {
        g_borrowed_errno = r->saved_errno;
        // The return address dlopen goes back through: errno first, then the signal frame.
        *reinterpret_cast<uint64_t *>(r->return_slot) = reinterpret_cast<uintptr_t>(&graft_attach_return);
        std::memset(r->magic, 0, sizeof r->magic);
    }
}

}  // namespace graft

extern "C" __attribute__((visibility("hidden"))) void graft_attach_restore_errno() {
    errno = graft::g_borrowed_errno;
}
