#include "arch/x86_64/relocate.hpp"

#include <Zydis/Zydis.h>
#include <sys/uio.h>
#include <ucontext.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <vector>

namespace graft::arch {

namespace {

constexpr uint8_t kEndbrBytes[4] = {0xf3, 0x0f, 0x1e, 0xfa};
// How much of a jump table is read: tables end where an entry stops pointing into the function;
// this only bounds the read of a table that never does.
constexpr size_t kMaxTableEntries = 4096;
// The largest function whose code is scanned for branches into its entry (a bigger one is read
// whole all the same: the bound is only against a corrupt symbol size).
constexpr size_t kMaxScanned = size_t{16} << 20;

std::string hex(uintptr_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%lx", static_cast<unsigned long>(v));
    return b;
}

bool read_mem(uintptr_t addr, void *buf, size_t len) {
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void *>(addr), len};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

bool fits_rel32(int64_t v) {
    return v >= INT32_MIN && v <= INT32_MAX;
}

void put32(uint8_t *p, int64_t v) {
    auto r = static_cast<int32_t>(v);
    std::memcpy(p, &r, 4);
}

struct Decoded {
    ZydisDecodedInstruction insn;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

bool decode(const ZydisDecoder &dec, const uint8_t *p, size_t avail, Decoded *d) {
    return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, p, avail, &d->insn, d->ops));
}

// A relative branch's target, if `d` is one (jmp, jcc, call, loop, xbegin).
bool branch_target(const Decoded &d, uintptr_t at, uintptr_t *target) {
    for (int i = 0; i < 2; i++) {
        const auto &imm = d.insn.raw.imm[i];
        if (imm.size && imm.is_relative) {
            *target = at + d.insn.length + static_cast<uintptr_t>(imm.value.s);
            return true;
        }
    }
    return false;
}

// The rip-relative memory operand's absolute address, if `d` has one.
bool rip_operand(const Decoded &d, uintptr_t at, uintptr_t *target) {
    for (int i = 0; i < d.insn.operand_count; i++) {
        const auto &op = d.ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_RIP) {
            *target = at + d.insn.length + static_cast<uintptr_t>(op.mem.disp.value);
            return true;
        }
    }
    return false;
}

// An absolute table operand `disp(,%reg,8)` (non-PIC switch tables), if `d` has one.
bool absolute_table_operand(const Decoded &d, uintptr_t *table) {
    for (int i = 0; i < d.insn.operand_count; i++) {
        const auto &op = d.ops[i];
        if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_NONE &&
            op.mem.index != ZYDIS_REGISTER_NONE && op.mem.scale == 8 && op.mem.disp.has_displacement) {
            *table = static_cast<uintptr_t>(op.mem.disp.value);
            return true;
        }
    }
    return false;
}

// Reads a table of `width`-byte entries (4: offsets from the table, as gcc and clang emit for
// PIC code; 8: absolute addresses) while its entries land in [flo, fhi); true with *hit set to an
// entry landing in [lo, hi).
bool table_hits(uintptr_t table, int width, uintptr_t flo, uintptr_t fhi, uintptr_t lo, uintptr_t hi,
                size_t *index) {
    uint8_t buf[512];
    for (size_t i = 0; i < kMaxTableEntries;) {
        size_t chunk = sizeof buf / width;
        if (!read_mem(table + i * width, buf, chunk * width)) {
            // The end of the mapping may come sooner: read entry by entry.
            chunk = 1;
            if (!read_mem(table + i * width, buf, width)) return false;
        }
        for (size_t k = 0; k < chunk; k++, i++) {
            uintptr_t t;
            if (width == 4) {
                int32_t rel;
                std::memcpy(&rel, buf + k * 4, 4);
                t = table + static_cast<uintptr_t>(static_cast<int64_t>(rel));
            } else {
                std::memcpy(&t, buf + k * 8, 8);
            }
            if (t < flo || t >= fhi) return false;
            if (t >= lo && t < hi) {
                *index = i;
                return true;
            }
        }
    }
    return false;
}

// Every way the function's own code can reach [lo, hi) (the entry and the bytes the jump
// covers) other than through its first instruction: direct branches and jump tables.
// `part` names the code scanned in messages ("" for the function itself, "in its .cold part "
// for another range of it: [lo, lo + len) instead of [func, func + size)).
bool scan_branches(const ZydisDecoder &dec, uintptr_t func, size_t size, uintptr_t at, uintptr_t end,
                   std::string *why, uintptr_t lo = 0, size_t len = 0, const char *part = "") {
    if (!lo) {
        lo = func;
        len = size;
    }
    std::vector<uint8_t> code(len);
    if (len > kMaxScanned || !read_mem(lo, code.data(), len)) {
        *why =
            std::string("graft cannot read all of its code ") + part + "(" + std::to_string(len) + " bytes)";
        return false;
    }
    for (size_t off = 0; off < len;) {
        Decoded d;
        uintptr_t pc = lo + off;
        if (!decode(dec, code.data() + off, len - off, &d)) {
            // Alignment padding after the last instruction may be anything the linker put there;
            // code cannot follow a byte the decoder rejects, so what remains is unreachable data
            // only if nothing jumps to it. Be strict: an undecodable byte means unknown control flow.
            *why = std::string("graft cannot decode its code ") + part + "at +" + std::to_string(off) +
                   ", so it cannot prove that no branch lands in its first bytes";
            return false;
        }
        bool inside = pc >= at && pc < end;
        uintptr_t t;
        if (!inside && branch_target(d, pc, &t)) {
            // (in a .cold part, a branch back to the entry is as bad as one from the body)
            bool is_call = d.insn.meta.category == ZYDIS_CATEGORY_CALL;
            // A call to the symbol (recursion) is a new call: it is meant to reach graft.
            if (is_call ? (t > at && t < end) : (t >= func && t < end)) {
                *why = t <= at ? std::string("a branch ") + part + "at +" + std::to_string(off) +
                                     " jumps back to its entry (a loop through its first instruction)"
                               : std::string("a branch ") + part + "at +" + std::to_string(off) +
                                     " lands inside the " + std::to_string(end - at) +
                                     " bytes the jump at its entry would cover";
                return false;
            }
        }
        uintptr_t table;
        size_t idx = 0;
        if (!inside && rip_operand(d, pc, &table) && (table < func || table >= func + size) &&
            (table < lo || table >= lo + len)) {
            if (table_hits(table, 4, func, func + size, func, end, &idx)) {
                *why = "its jump table at " + hex(table) + " (entry " + std::to_string(idx) + ", used at +" +
                       std::to_string(off) + ") lands inside the first " + std::to_string(end - at) +
                       " bytes the jump at its entry would cover";
                return false;
            }
        }
        if (!inside && absolute_table_operand(d, &table) &&
            table_hits(table, 8, func, func + size, func, end, &idx)) {
            *why = "its jump table at " + hex(table) + " (entry " + std::to_string(idx) + ", used at +" +
                   std::to_string(off) + ") lands inside the first " + std::to_string(end - at) +
                   " bytes the jump at its entry would cover";
            return false;
        }
        off += d.insn.length;
    }
    return true;
}

}  // namespace

bool is_endbr64(const uint8_t *p) {
    return std::memcmp(p, kEndbrBytes, 4) == 0;
}

bool plan_entry_rewrite(uintptr_t func, size_t size, uintptr_t block, EntryRewrite *out, std::string *why,
                        const CodeRange *cold, size_t n_cold) {
    EntryRewrite r;
    uint8_t head[64] = {};
    size_t head_len = size < sizeof head ? size : sizeof head;
    if (size == 0 || !read_mem(func, head, head_len)) {
        *why = "its size is unknown or its code is not readable";
        return false;
    }
    size_t skip = head_len >= 4 && is_endbr64(head) ? 4 : 0;
    r.at = func + skip;
    size_t avail = size - skip;
    if (avail < kEntryJumpSize) {
        *why = "it is shorter than the " + std::to_string(kEntryJumpSize) +
               "-byte jump graft writes at its entry (" + std::to_string(avail) + " bytes" +
               (skip ? " after its endbr64)" : ")");
        return false;
    }
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);

    // The block's head: the prefix jump through the slot (the caller sets the slot).
    uint8_t *b = r.block;
    std::memset(b, kBreakpoint, kBlockSize);
    const int32_t to_slot = static_cast<int32_t>(kBlockSlotDistance - 6);
    b[0] = 0xff, b[1] = 0x25;
    std::memcpy(b + 2, &to_slot, 4);

    size_t n = 0;                 // displaced bytes so far
    size_t w = kBlockCopyOffset;  // write position in the block
    bool left = false;            // the copy ends in an unconditional jump: no jump back
    uintptr_t inner[8];           // targets of the displaced branches
    size_t n_inner = 0;
    size_t n_insns = 0;
    while (n < kEntryJumpSize) {
        Decoded d;
        uintptr_t pc = r.at + n;
        size_t lim = avail - n < 15 ? avail - n : 15;
        if (!decode(dec, head + skip + n, lim, &d)) {
            *why = "graft cannot decode its instruction at +" + std::to_string(skip + n);
            return false;
        }
        const auto &in = d.insn;
        if (left || in.meta.category == ZYDIS_CATEGORY_RET) {
            *why = "its code leaves it within its first " + std::to_string(n + in.length) +
                   " bytes, shorter than the " + std::to_string(kEntryJumpSize) + "-byte jump graft writes";
            return false;
        }
        if (in.mnemonic == ZYDIS_MNEMONIC_INT3) {
            *why = "its entry holds a breakpoint (a debugger or another tool rewrote it)";
            return false;
        }
        if (n == 0 && head[skip] == 0xe9) {
            // A thunk that only tail-calls is legal code, but this is also what another tool's
            // hook looks like; graft does not stack its own jump on top of one it cannot tell.
            *why = "its entry is already a 5-byte jump (another tool may have rewritten it)";
            return false;
        }
        if (w + in.length + 6 + kEntryJumpSize > kBlockSize) {
            *why = "its first instructions do not fit graft's relocation block";
            return false;
        }
        uint8_t *o = b + w;
        uintptr_t opc = block + w;
        uintptr_t t;
        if (in.meta.category == ZYDIS_CATEGORY_CALL) {
            *why = "a call in its first " + std::to_string(kEntryJumpSize) +
                   " bytes cannot be moved (the callee's return address would have no unwind information)";
            return false;
        } else if (branch_target(d, pc, &t)) {
            if (n_inner < 8) inner[n_inner++] = t;  // checked once the displaced length is known
            if (in.meta.category == ZYDIS_CATEGORY_UNCOND_BR && in.mnemonic == ZYDIS_MNEMONIC_JMP) {
                o[0] = 0xe9;
                if (!fits_rel32(static_cast<int64_t>(t - (opc + 5)))) goto far;
                put32(o + 1, static_cast<int64_t>(t - (opc + 5)));
                w += 5;
                left = true;
            } else if (in.meta.category == ZYDIS_CATEGORY_COND_BR && in.mnemonic != ZYDIS_MNEMONIC_LOOP &&
                       in.mnemonic != ZYDIS_MNEMONIC_LOOPE && in.mnemonic != ZYDIS_MNEMONIC_LOOPNE &&
                       in.mnemonic != ZYDIS_MNEMONIC_JRCXZ && in.mnemonic != ZYDIS_MNEMONIC_JECXZ &&
                       in.mnemonic != ZYDIS_MNEMONIC_JCXZ) {
                // The condition code is the low nibble of the opcode in both forms (7x rel8, 0f 8x rel32).
                uint8_t cc = in.opcode & 0x0f;
                o[0] = 0x0f;
                o[1] = static_cast<uint8_t>(0x80 | cc);
                if (!fits_rel32(static_cast<int64_t>(t - (opc + 6)))) goto far;
                put32(o + 2, static_cast<int64_t>(t - (opc + 6)));
                w += 6;
            } else {
                *why = "its instruction at +" + std::to_string(skip + n) +
                       " (a relative branch graft cannot re-encode) cannot be moved";
                return false;
            }
        } else if (rip_operand(d, pc, &t)) {
            if (in.raw.disp.size != 32) {
                *why = "its instruction at +" + std::to_string(skip + n) + " cannot be moved";
                return false;
            }
            int64_t disp = static_cast<int64_t>(t - (opc + in.length));
            if (!fits_rel32(disp)) goto far;
            std::memcpy(o, head + skip + n, in.length);
            put32(o + in.raw.disp.offset, disp);
            w += in.length;
        } else if (in.attributes & ZYDIS_ATTRIB_IS_RELATIVE) {
            *why = "its instruction at +" + std::to_string(skip + n) +
                   " is position-dependent and cannot be moved";
            return false;
        } else {
            std::memcpy(o, head + skip + n, in.length);
            w += in.length;
        }
        n += in.length;
        n_insns++;
        continue;
    far:
        *why =
            "graft's relocation block is out of a 32-bit offset's reach of what its first instructions "
            "address";
        return false;
    }
    if (!left) {
        uint8_t *o = b + w;
        int64_t rel = static_cast<int64_t>((r.at + n) - (block + w + 5));
        if (!fits_rel32(rel)) {
            *why = "graft's relocation block is out of a 32-bit offset's reach of the function";
            return false;
        }
        o[0] = 0xe9;
        put32(o + 1, rel);
        w += 5;
    }
    if (!fits_rel32(static_cast<int64_t>(block - (r.at + kEntryJumpSize)))) {
        *why = "graft's relocation block is out of a 32-bit offset's reach of the function";
        return false;
    }
    for (size_t i = 0; i < n_inner; i++)
        if (inner[i] >= func && inner[i] < r.at + n) {
            *why = "a branch in its first " + std::to_string(n) + " bytes lands back inside them";
            return false;
        }
    r.displaced = static_cast<uint8_t>(n);
    r.one_instruction = n_insns == 1;
    std::memcpy(r.original, head + skip, n);
    r.block_len = w;
    if (!scan_branches(dec, func, size, r.at, r.at + n, why)) return false;
    for (size_t i = 0; i < n_cold; i++)
        if (!scan_branches(dec, func, size, r.at, r.at + n, why, cold[i].lo, cold[i].len,
                           "in its .cold part "))
            return false;
    *out = r;
    return true;
}

void entry_jump_bytes(const EntryRewrite &r, uintptr_t block, uint8_t out[5]) {
    out[0] = 0xe9;
    put32(out + 1, static_cast<int64_t>(block - (r.at + kEntryJumpSize)));
}

bool jump_rel32_bytes(uintptr_t at, uintptr_t target, uint8_t out[5]) {
    const int64_t rel = static_cast<int64_t>(target - (at + kEntryJumpSize));
    if (!fits_rel32(rel)) return false;
    out[0] = 0xe9;
    put32(out + 1, rel);
    return true;
}

uintptr_t trap_pc(const void *ucontext) {
    return static_cast<uintptr_t>(static_cast<const ucontext_t *>(ucontext)->uc_mcontext.gregs[REG_RIP]);
}

void set_trap_pc(void *ucontext, uintptr_t pc) {
    static_cast<ucontext_t *>(ucontext)->uc_mcontext.gregs[REG_RIP] = static_cast<greg_t>(pc);
}

}  // namespace graft::arch
