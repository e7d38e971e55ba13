// The runtime model of patches (klp_patch / klp_object / klp_func) and of each patched
// function's stack of versions (klp_ops.func_stack), with the selector that reads it on every
// call during a transition exactly as klp_ftrace_handler() does.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/process/symbols.hpp"
#include "arch/arch.hpp"
#include "arch/x86_64/relocate.hpp"
#include "graft/graft.h"

namespace graft {

struct Patch;
struct Object;
struct FuncStack;

struct Func {  // klp_func
    // The fields the selector reads come first, at the offsets the hand-written fast path uses
    // (src/arch/x86_64/selector_layout.h; checked in selector.cpp).
    void *new_func = nullptr;
    // The next lower entry of the func_stack (the previous top when this one was pushed).
    // Published with release by push_func/pop_func; read with acquire by the selector.
    std::atomic<Func *> below{nullptr};
    // Read by the selector (acquire) after it loads the stack top; written under the core mutex.
    std::atomic<bool> transition{false};
    bool nop = false;  // atomic replace: run whatever lies below (the original here)
    std::string old_name;
    unsigned long old_sympos = 0;
    uintptr_t old_addr = 0;
    size_t old_size = 0;
    size_t new_size = 0;
    bool patched = false;  // on its func_stack
    FuncStack *stack = nullptr;
    Object *obj = nullptr;
};

struct Object {                         // klp_object
    graft_object *desc = nullptr;       // nullptr for dynamic (nop-only) objects
    std::string name;                   // display name: "main" for the executable
    const char *lookup_name = nullptr;  // as in the descriptor (NULL = main)
    std::string own_lookup_name;        // a dynamic object's: its descriptor is another patch's
    std::vector<std::unique_ptr<Func>> funcs;
    bool patched = false;
    bool loaded = false;         // the target object is in the process
    bool pre_patch_ran = false;  // post_unpatch_enabled in the kernel
    bool dynamic = false;
    uintptr_t base = 0;  // load bias of the live object it is bound to (while loaded)
    Patch *patch = nullptr;
    std::string expected_build_id;  // from graft build --target, if any
};

struct Patch {  // klp_patch
    std::string name;
    std::string path;
    void *handle = nullptr;                  // dlopen handle of the patch .so
    int image_fd = -1;                       // what it was loaded from (patch_file.hpp), closed after dlclose
    std::shared_ptr<const SymbolFile> syms;  // of those bytes (sizes of the new functions)
    uintptr_t load_bias = 0;                 // of the patch .so
    graft_patch *desc = nullptr;
    std::vector<std::unique_ptr<Object>> objs;
    bool enabled = false;
    bool forced = false;
    bool replace = false;
    bool in_list = false;   // on the list of patches (enabled or in transition)
    bool replaced = false;  // left the list because a replace patch completed
    // Nop functions and dynamic objects discarded when the replace completed. Kept until the
    // patch is freed: a selector may still have been reading them when they were popped, and
    // the patch is freed long after a grace period (unload).
    std::vector<std::unique_ptr<Func>> discarded_funcs;
    std::vector<std::unique_ptr<Object>> discarded_objs;
};

// One per original function that has, or had, versions pushed (klp_ops). Never freed: the
// stub table may name it for as long as the process lives, and it is small.
struct FuncStack {
    // Top of the stack (the active version). Release-stored by push/pop under the core mutex,
    // acquire-loaded by the selector. First, with `entry`, at the offsets of
    // src/arch/x86_64/selector_layout.h.
    std::atomic<Func *> top{nullptr};
    arch::EntryLayout entry;
    uint32_t stub = 0;
    std::string name;
    std::string object;
    bool gate_open = false;
    uintptr_t routed_to = 0;  // what the prefix pointer currently holds
};

// Table read by the trampoline's selector: stub index -> FuncStack. Entries are written before
// the prefix pointer naming the stub is published (release) and never cleared.
extern "C" FuncStack *graft_stub_table[];
constexpr uint32_t kStubCount = arch::kStubCount;

// ---- func_stack manipulation (core mutex held) -------------------------------------------

// Finds or creates the stack of the function at `addr`. Validates the entry.
// `compiler_entry`: the object's file lists a patchable entry for this function; without one the
// function's own entry is rewritten (entry_rewrite.hpp) if that is safe, after `cold` (its
// .cold parts) too was scanned for branches into it.
FuncStack *stack_for(uintptr_t addr, size_t size, bool compiler_entry, const std::string &name,
                     const std::string &object, std::string *why,
                     const std::vector<arch::CodeRange> &cold = {});
FuncStack *find_stack(uintptr_t addr);
// An object is going: its functions' stacks (all entries already popped) are forgotten, and
// their stubs are reused after a grace period, so that an object mapped later at the same
// addresses starts afresh.
void retire_stacks(uintptr_t lo, uintptr_t hi);
void push_func(Func *f);  // klp_patch_func: on top
void pop_func(Func *f);   // klp_unpatch_func: wherever it is
// klp_patch_object / klp_unpatch_object: every function of `o` pushed, or every one still on its
// stack popped.
void patch_object(Object *o);
void unpatch_object(Object *o);
void unpatch_objects(Patch *p);  // klp_unpatch_objects

// Code routing: where each function's entry leads. route_to_selector() is used before a
// transition touches the function; route_direct() after it completed, so that a fully patched
// function costs one jump. Writes are batched: apply_routes() performs them with the required
// barriers and reports failure without having changed anything.
struct RouteChange {
    FuncStack *fs;
    bool open;         // gate state wanted
    uintptr_t target;  // prefix pointer wanted
};
// Where an open ordinary entry's jmp leads straight to (routed_to, when a rel32 reaches it), or
// 0: it leads to its block, or the entry is closed, or it is graft's own entry. apply_routes()
// writes the entry's bytes by this rule, so it is what they hold.
uintptr_t entry_jump(const FuncStack &fs);
bool apply_routes(const std::vector<RouteChange> &changes, std::string *why);
// Routes every function of `o` through its stub, so that the selector chooses per thread (before
// a transition may switch any thread on them).
bool route_through_selector(const Object &o, std::string *why);
// Every function no transition runs on goes straight to its top version, or back to its own body
// when its stack is empty. A failure is logged and changes nothing: the selector, which every
// entry then still runs, gives the same answer.
void route_settled_functions();
// The pointer value for the current top of `fs` when no transition runs on it.
uintptr_t direct_target(const FuncStack *fs);
uintptr_t stub_address(const FuncStack *fs);
std::vector<FuncStack *> all_stacks();

// The selector's slow path may try to switch the calling thread; transition.cpp provides it.
// `ra_slot`: where the return address of the patched function being entered lies; `bp`: %rbp
// at its entry (the caller's). Together they are the caller's frame, where the check starts.
bool try_switch_self_from_selector(uintptr_t ra_slot, uintptr_t bp);

}  // namespace graft
