// Instruction bytes of a patchable function entry on x86-64. The only place outside
// trampoline.S that knows opcodes.
#pragma once
#include <cstdint>
#include <string>

namespace graft::arch {

// Built with -fpatchable-function-entry=16,14: 14 bytes of padding before the symbol, then a
// 2-byte gate at the symbol (after endbr64 when -fcf-protection is on).
//   prefix  [f-14, f-6): 8-byte pointer, naturally aligned, changed only by atomic stores
//           [f-6,  f)   : jmp *-14(%rip)   -> jumps to the pointer
//   gate    [g, g+2)    : 66 90 (closed)    /  eb xx = jmp to f-6 (open)
constexpr int kPrefixSize = 14;
constexpr int kGateSize = 2;

struct EntryLayout {
    uintptr_t func = 0;             // the symbol's address
    uintptr_t prefix = 0;           // func - 14
    uintptr_t slot = 0;             // the pointer, == prefix
    uintptr_t gate = 0;             // func or func + 4 after endbr64
    uintptr_t body = 0;             // gate + 2: the original code continues here
    bool single_byte_nops = false;  // gcc's "90 90" gate, not yet turned into one 2-byte nop
    bool prefix_ours = false;       // the prefix already holds graft's jump
    bool gate_open = false;
    // An ordinary entry (no patchable entry; arch/x86_64/relocate.hpp): `prefix` is the
    // relocation block's jump, `slot` its pointer, `gate` where the 5-byte jmp goes, `body` the
    // relocated copy of the displaced instructions. Open: `jump` at the gate; closed: `original`.
    bool ordinary = false;
    uint8_t displaced = 0;         // bytes of the instructions the jmp covers
    bool one_instruction = false;  // they are one instruction: no thread can stand inside them
    uint8_t original[8]{};
    uint8_t jump[8]{};
    uintptr_t copy_end = 0;  // the relocated copy is [body, copy_end)
};

// Where the prefix's `jmp *ptr` (prefix_jump_bytes) goes: the last 6 bytes before the symbol.
constexpr int kPrefixJumpSize = 6;
inline uintptr_t prefix_jump_at(const EntryLayout &e) {
    return e.ordinary ? e.prefix : e.func - kPrefixJumpSize;
}

// Decodes the entry of `func`; on failure returns false and says why in *why.
bool decode_entry(uintptr_t func, EntryLayout *out, std::string *why);

// Bytes to write.
uint16_t gate_closed_word();                    // 66 90
uint16_t gate_open_word(const EntryLayout &e);  // eb (f-6 - (gate+2))
void prefix_jump_bytes(uint8_t out[6]);         // ff 25 f2 ff ff ff

// The loader hook (process/loader_watch.cpp): a function that is one bare `ret`, and the jumps
// written over it and into the page that reaches the agent.
bool is_bare_return(const uint8_t *p);                          // c3
constexpr int kJumpSize = 5;                                    // e9 rel32
bool jump_bytes(uintptr_t from, uintptr_t to, uint8_t out[5]);  // false: out of rel32's reach
constexpr int kFarJumpSize = 14;                                // ff 25 00000000, then the address
void far_jump_bytes(uintptr_t to, uint8_t out[14]);

// True when the interrupted pc is on a gate's second byte (gcc single-byte nops).
bool is_single_nop_pair(const uint8_t *p);
// True when [p, p+n) is n 1-byte nops and p[n] is not one: a run of exactly n (the jump layout's
// entry, as gcc emits it; the gate layout's padding is a longer run).
bool is_single_nop_run(const uint8_t *p, int n);
// One 5-byte nop (0f 1f 44 00 00), the jump layout's entry once merged.
void nop5_bytes(uint8_t out[5]);

// A cheap monotonic-enough cycle count for rate limits (not for time measurement).
inline uint64_t cycles() {
    return __builtin_ia32_rdtsc();
}

// Core-serialising barrier on every thread of the process (cross-modifying code rule).
bool sync_cores();
// Register the process for the membarrier commands used above; false if the kernel lacks them.
bool init_membarrier(std::string *why);
// A full memory barrier executed by every running thread of the process (asymmetric fence).
void membarrier_all();

}  // namespace graft::arch
