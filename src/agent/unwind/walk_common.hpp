// What the stack checks' two walkers share (stack_check.cpp defines it): own_walk.cpp, a thread
// checking its own stack (signal handler, selector), and blocked_walk.cpp, the worker checking a
// thread blocked in a system call. Included by those three files only.
#pragma once
#include <link.h>
#include <unwind.h>

#include <atomic>
#include <cstdint>

#include "agent/unwind/stack_check.hpp"

namespace graft {

constexpr int kMaxFrames = 256;

// Functions whose CFI ends the stack (rip undefined): _start of the executable, the clone
// helpers that start threads. Written once by the worker before any check runs.
extern std::atomic<uintptr_t> g_roots[4];
// graft's own object (the selector's frames are skipped in a self-check).
extern std::atomic<link_map *> g_self_map;
// Objects whose code may be interrupted at points where its CFI does not describe the stack
// (the unwinder installing a context for a C++ exception, the dynamic loader): a signal that
// lands there is answered "unreliable" before any walk starts.
extern std::atomic<link_map *> g_unwinder_map, g_loader_map;

// The start of the function whose FDE covers pc (0: none).
uintptr_t fde_func(uintptr_t pc);
// The range [lo, hi) of the function whose FDE covers pc; false when the FDE's encoding is not
// the usual pc-relative one.
bool fde_range(uintptr_t pc, uintptr_t *lo, uintptr_t *hi);
// pc lies in a function that ends a thread's stack.
bool is_root(uintptr_t pc);
// pc lies in the trampoline or the selector, where no frame is described.
bool in_graft_hot_code(uintptr_t pc);
// The name of the forbidden function pc lies in, or nullptr.
const char *find_forbidden(uintptr_t pc, const ForbiddenTable *t);

// A walk of the calling thread's stack by libgcc (own_walk.cpp).
struct OwnWalk {
    uintptr_t pc[kMaxFrames];
    uintptr_t cfa[kMaxFrames];
    int n = 0;
    bool overflow = false;
    bool bad_cfa = false;
    uintptr_t last_cfa = 0;
    uint64_t deadline_ns = 0;  // 0: none
    bool timed_out = false;
};
_Unwind_Reason_Code collect(struct _Unwind_Context *ctx, void *arg);

// At the worker's start: GRAFT_OWN_WALK and GRAFT_VERIFY_HANDLER_WALK (own_walk.cpp).
void own_walk_init();

}  // namespace graft
