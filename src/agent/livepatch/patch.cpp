#include "agent/livepatch/patch.hpp"

#include <cstring>
#include <map>

#include "agent/process/code_writer.hpp"
#include "agent/process/entry_rewrite.hpp"
#include "agent/process/object_events.hpp"
#include "agent/service/log.hpp"
#include "agent/threads/thread_state.hpp"

namespace graft {

extern "C" {
FuncStack *graft_stub_table[kStubCount];
}

namespace {
// Protected by the core mutex (core.cpp), like everything else in this file.
auto &g_stacks = *new std::map<uintptr_t, std::unique_ptr<FuncStack>>;  // never destroyed
uint32_t g_next_stub = 0;
// Stacks of objects that went away. A selector that entered through one of their stubs before
// the object went may still read it; after a grace period none can, and stub and stack are
// reused together (the stub table keeps naming the same FuncStack).
auto &g_retired = *new std::vector<std::unique_ptr<FuncStack>>;
auto &g_reusable = *new std::vector<std::unique_ptr<FuncStack>>;
}  // namespace

uintptr_t stub_address(const FuncStack *fs) {
    return arch::stub_address(fs->stub);
}

FuncStack *find_stack(uintptr_t addr) {
    auto it = g_stacks.find(addr);
    return it == g_stacks.end() ? nullptr : it->second.get();
}

std::vector<FuncStack *> all_stacks() {
    std::vector<FuncStack *> v;
    for (auto &[a, fs] : g_stacks) v.push_back(fs.get());
    return v;
}

FuncStack *stack_for(uintptr_t addr, size_t size, bool compiler_entry, const std::string &name,
                     const std::string &object, std::string *why, const std::vector<arch::CodeRange> &cold) {
    if (FuncStack *fs = find_stack(addr)) return fs;
    arch::EntryLayout e;
    if (!arch::decode_entry(addr, &e, why)) {
        // No patchable entry the compiler made: rewrite the function's own first instructions.
        if (compiler_entry || !prepare_ordinary_entry(addr, size, &e, why, cold)) return nullptr;
    } else if (code_pages_locked() && !e.gate_open && !e.prefix_ours) {
        // A gate and its prefix's pointer change by 2- and 8-byte atomic stores, which a process
        // that forbids writable code does not allow (code_writer.hpp): its entry is rewritten
        // as an ordinary one instead, the gate's nop moving into the block with what follows.
        if (!prepare_ordinary_entry(addr, size, &e, why, cold)) return nullptr;
    }
    if (e.single_byte_nops) {
        *why =
            "its entry still has two single-byte nops (it was loaded after the agent started "
            "and graft could not make its gate safe)";
        return nullptr;
    }
    if (g_reusable.empty() && !g_retired.empty()) {
        synchronize_threads();
        for (auto &r : g_retired) g_reusable.push_back(std::move(r));
        g_retired.clear();
    }
    std::unique_ptr<FuncStack> fs;
    if (!g_reusable.empty()) {
        fs = std::move(g_reusable.back());
        g_reusable.pop_back();
        fs->top.store(nullptr, std::memory_order_relaxed);
    } else {
        if (g_next_stub >= kStubCount) {
            *why = "graft's table of patched functions is full";
            return nullptr;
        }
        fs = std::make_unique<FuncStack>();
        fs->stub = g_next_stub++;
    }
    fs->entry = e;
    fs->name = name;
    fs->object = object;
    fs->gate_open = e.gate_open;
    fs->routed_to = e.prefix_ours ? *reinterpret_cast<const uintptr_t *>(e.slot) : 0;
    // Published before any prefix names this stub (apply_routes writes after, with release).
    __atomic_store_n(&graft_stub_table[fs->stub], fs.get(), __ATOMIC_RELEASE);
    FuncStack *raw = fs.get();
    g_stacks.emplace(addr, std::move(fs));
    return raw;
}

void retire_stacks(uintptr_t lo, uintptr_t hi) {
    for (auto it = g_stacks.lower_bound(lo); it != g_stacks.end() && it->first < hi;) {
        g_retired.push_back(std::move(it->second));
        it = g_stacks.erase(it);
    }
}

void push_func(Func *f) {
    FuncStack *fs = f->stack;
    f->below.store(fs->top.load(std::memory_order_relaxed), std::memory_order_relaxed);
    // Release: the entry's fields (and its transition flag, set before by the caller) are
    // visible to any selector that loads the new top with acquire (list_add_rcu).
    fs->top.store(f, std::memory_order_release);
    f->patched = true;
}

void pop_func(Func *f) {
    FuncStack *fs = f->stack;
    Func *below = f->below.load(std::memory_order_relaxed);
    Func *cur = fs->top.load(std::memory_order_relaxed);
    if (cur == f) {
        fs->top.store(below, std::memory_order_release);
    } else {
        // Unlink from the middle (list_del_rcu): the entry above now skips it. `f` itself keeps
        // its `below` link so a selector that is still reading it can continue past it.
        while (cur && cur->below.load(std::memory_order_relaxed) != f)
            cur = cur->below.load(std::memory_order_relaxed);
        if (cur) cur->below.store(below, std::memory_order_release);
    }
    f->patched = false;
}

void patch_object(Object *o) {
    for (auto &f : o->funcs) push_func(f.get());
    o->patched = true;
}

void unpatch_object(Object *o) {
    for (auto &f : o->funcs)
        if (f->patched) pop_func(f.get());
    o->patched = false;
}

void unpatch_objects(Patch *p) {
    for (auto &o : p->objs)
        if (o->patched) unpatch_object(o.get());
}

bool route_through_selector(const Object &o, std::string *why) {
    std::vector<RouteChange> routes;
    for (auto &f : o.funcs) routes.push_back({f->stack, true, stub_address(f->stack)});
    return apply_routes(routes, why);
}

void route_settled_functions() {
    std::vector<RouteChange> routes;
    for (FuncStack *fs : all_stacks()) {
        Func *top = fs->top.load(std::memory_order_relaxed);
        if (top && top->transition.load(std::memory_order_relaxed)) continue;
        bool open = top != nullptr;
        uintptr_t target = open ? direct_target(fs) : fs->entry.body;
        if (open == fs->gate_open && (target == fs->routed_to || !open)) continue;
        routes.push_back({fs, open, target});
    }
    std::string why;
    if (!apply_routes(routes, &why)) {
        // Every entry still runs the selector, which gives the same answer: correct, only slower.
        log_line("graft: could not route settled functions directly: " + why);
    }
}

uintptr_t entry_jump(const FuncStack &fs) {
    return fs.entry.ordinary && fs.gate_open ? ordinary_jump_destination(fs.entry, fs.routed_to) : 0;
}

uintptr_t direct_target(const FuncStack *fs) {
    Func *top = fs->top.load(std::memory_order_relaxed);
    if (!top || top->nop) return fs->entry.body;
    return reinterpret_cast<uintptr_t>(top->new_func);
}

namespace {

// The pointers of `changes` back to what graft's records say they hold.
void undo_pointers(const std::vector<RouteChange> &changes) {
    std::vector<CodeWrite> undo;
    for (const auto &c : changes) {
        if (c.target == c.fs->routed_to) continue;
        CodeWrite w{c.fs->entry.slot, 8, {}};
        std::memcpy(w.bytes, &c.fs->routed_to, 8);
        undo.push_back(w);
    }
    std::string undo_why;
    // Open gates reach these pointers: if they cannot be put back, routing is not what
    // graft's records say, and nothing more may be patched.
    if (!write_code(undo, &undo_why))
        code_writer_mark_broken("routing writes could not be undone after a failed write: " + undo_why);
    arch::membarrier_all();
}

}  // namespace

bool apply_routes(const std::vector<RouteChange> &changes, std::string *why) {
    // 1. Everything a gate can reach: the prefix (only while its gate is closed) and pointers.
    std::vector<CodeWrite> reach, gates, gates_back;
    std::vector<EntryFlip> flips;
    bool prefix_written = false;
    for (const auto &c : changes) {
        FuncStack *fs = c.fs;
        const auto &e = fs->entry;
        if (!fs->gate_open && !e.prefix_ours) {
            CodeWrite w{arch::prefix_jump_at(e), arch::kPrefixJumpSize, {}};
            arch::prefix_jump_bytes(w.bytes);
            reach.push_back(w);
            prefix_written = true;
        }
        if (c.target != fs->routed_to) {
            CodeWrite w{e.slot, 8, {}};
            std::memcpy(w.bytes, &c.target, 8);
            reach.push_back(w);
        }
        if (e.ordinary) {
            // Straight to the destination when a rel32 reaches it (one jump); the block otherwise.
            const uintptr_t to = c.open ? ordinary_jump_destination(e, c.target) : 0;
            if (c.open != fs->gate_open || (c.open && to != entry_jump(*fs)))
                flips.push_back({&e, c.open, fs->gate_open, to});
            continue;
        }
        if (c.open == fs->gate_open) continue;
        CodeWrite w{e.gate, 2, {}}, back{e.gate, 2, {}};
        uint16_t v = c.open ? arch::gate_open_word(e) : arch::gate_closed_word();
        uint16_t b = c.open ? arch::gate_closed_word() : arch::gate_open_word(e);
        std::memcpy(w.bytes, &v, 2);
        std::memcpy(back.bytes, &b, 2);
        gates.push_back(w);
        gates_back.push_back(back);
    }
    if (!write_code(reach, why)) return false;
    // 2. No core may run a stale copy of a prefix once its gate opens (SDM cross-modifying code).
    if (prefix_written) arch::sync_cores();
    // A gate merged while threads ran (attach) opens only once no thread stands on its second
    // byte, where it would execute the displacement (object_events.hpp).
    std::vector<arch::CodeRange> second_bytes;
    for (const auto &c : changes)
        if (c.open && !c.fs->gate_open && !c.fs->entry.ordinary && gate_needs_probe(c.fs->entry.gate))
            second_bytes.push_back({c.fs->entry.gate + 1, 1});
    if (!second_bytes.empty()) {
        if (!wait_threads_outside(second_bytes, why)) {
            undo_pointers(changes);
            return false;
        }
        for (const auto &r : second_bytes) gate_probed(r.lo - 1);
    }
    if (!write_code(gates, why)) {
        // Prefixes behind closed gates are unreachable and stay.
        undo_pointers(changes);
        return false;
    }
    // Ordinary entries: their own protocol (entry_rewrite.hpp), which changes nothing on failure.
    if (!flip_ordinary_entries(flips, why)) {
        std::string back_why;
        if (!write_code(gates_back, &back_why))
            code_writer_mark_broken("gates could not be put back after a failed entry rewrite: " + back_why);
        arch::sync_cores();
        undo_pointers(changes);
        return false;
    }
    for (const auto &c : changes) {
        if (!c.fs->gate_open && !c.fs->entry.prefix_ours) c.fs->entry.prefix_ours = true;
        c.fs->routed_to = c.target;
        c.fs->gate_open = c.open;
    }
    // 3. Every thread fetches the new gates from here on (and sees the new pointers: data).
    arch::sync_cores();
    return true;
}

}  // namespace graft
