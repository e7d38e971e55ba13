// Entries of ordinary functions (built without graft's patchable entry): the instructions a
// 5-byte `jmp rel32` at the entry displaces, moved into an out-of-line block where they run for
// every thread that has to run the old function, and the checks that say whether that is safe.
//
// Decoding uses Zydis (Debian's libzydis4): it is table-driven, allocation-free and keeps no
// global state, so it can run in the host process on the worker thread; Capstone allocates per
// instruction and keeps a handle. Re-encoding is done here by hand: only displacements and
// branch offsets change, and the few byte forms involved are written out below.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace graft::arch {

// The block in executable memory near the object (within rel32 reach of the entry), and its
// slot in the data page the block allocator maps kBlockSlotDistance bytes after it: the slot is
// the one thing that changes while threads may run the block, and a data page can be written
// with plain atomic stores where code pages may never be writable (MDWE):
//   +0   ff 25 disp32        jmp *slot(%rip)      the "prefix jump" the entry's jmp reaches
//   +6   cc ...
//   +16  the displaced instructions, relocated, then `jmp entry+displaced`: the old function's
//        start for threads that must keep running it ("body")
//   slot = block + kBlockSlotDistance (8 bytes, naturally aligned; changed only by atomic stores)
constexpr size_t kBlockSlotDistance = 64 * 1024;
constexpr size_t kBlockCopyOffset = 16;
constexpr size_t kBlockSize = 128;
constexpr int kEntryJumpSize = 5;

struct EntryRewrite {
    uintptr_t at = 0;       // where the jmp goes: the symbol, or after its endbr64
    uint8_t displaced = 0;  // bytes of whole instructions the jmp covers (>= 5)
    // They are one instruction (a 5-byte nop of the jump layout, a long first instruction): no
    // thread can ever stand inside the bytes the jmp changes, only before them.
    bool one_instruction = false;
    uint8_t original[16]{};  // their bytes as they were
    uint8_t block[kBlockSize]{};
    size_t block_len = 0;  // bytes of `block` used
};

// Plans the rewrite of the function [func, func+size) whose block will live at `block`. Fails,
// with the reason in *why (a phrase: "it is shorter than ..."), when the entry cannot be moved:
// too short, an instruction that cannot run elsewhere, a branch or a jump table of the function
// that lands inside the displaced bytes or back on the entry, or an entry another tool already
// rewrote. Reads the function's code in place (it is mapped, from the object's symbol table)
// and jump tables through process_vm_readv (they may be anywhere).
// `cold` lists the function's other parts (gcc's `name.cold`: code split off the function that
// jumps back into it), scanned the same way for branches and tables into the entry.
struct CodeRange {
    uintptr_t lo = 0;
    size_t len = 0;
};
bool plan_entry_rewrite(uintptr_t func, size_t size, uintptr_t block, EntryRewrite *out, std::string *why,
                        const CodeRange *cold = nullptr, size_t n_cold = 0);

// The entry's jmp to the block: 5 bytes written over original[0..5).
void entry_jump_bytes(const EntryRewrite &r, uintptr_t block, uint8_t out[5]);
// A `jmp rel32` at `at` to `target`; false when the target is out of its reach.
bool jump_rel32_bytes(uintptr_t at, uintptr_t target, uint8_t out[5]);

// The breakpoint written first and removed last when an entry's bytes change.
constexpr uint8_t kBreakpoint = 0xcc;
constexpr int kBreakpointSize = 1;

// Whether `p` (readable) starts with endbr64.
bool is_endbr64(const uint8_t *p);

// Where the interrupted thread of a signal stands, and how to move it (SIGTRAP handler).
uintptr_t trap_pc(const void *ucontext);
void set_trap_pc(void *ucontext, uintptr_t pc);

}  // namespace graft::arch
