#include "arch/x86_64/stack_height.hpp"

#include <Zydis/Zydis.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace graft::arch {
namespace {
namespace height {  // (a unity build puts this file's anonymous namespace next to relocate.cpp's)

// Bounds against a corrupt FDE: a function this big is not followed.
constexpr size_t kMaxFunction = size_t{1} << 20;
constexpr size_t kMaxTableEntries = 4096;

bool read_mem(uintptr_t addr, void *buf, size_t len) {
    iovec local{buf, len};
    iovec remote{reinterpret_cast<void *>(addr), len};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// What is known at an instruction's start. Each field only ever goes from known to unknown when
// two paths meet, so following the function terminates.
struct Height {
    bool sp_known = false, bp_known = false;
    int32_t sp = 0;  // CFA - rsp
    int32_t bp = 0;  // CFA - rbp
    bool operator==(const Height &o) const {
        return sp_known == o.sp_known && bp_known == o.bp_known && (!sp_known || sp == o.sp) &&
               (!bp_known || bp == o.bp);
    }
};

Height meet(const Height &a, const Height &b) {
    Height m;
    m.sp_known = a.sp_known && b.sp_known && a.sp == b.sp;
    m.sp = m.sp_known ? a.sp : 0;
    m.bp_known = a.bp_known && b.bp_known && a.bp == b.bp;
    m.bp = m.bp_known ? a.bp : 0;
    return m;
}

// A height `base - k` (k from the code: any 64-bit value), or unknown past what a stack could be.
constexpr int64_t kMaxHeight = int64_t{1} << 24;
void set_height(bool *known, int32_t *out, bool base_known, int32_t base, int64_t k) {
    const int64_t v = static_cast<int64_t>(base) - (k > kMaxHeight || k < -kMaxHeight ? kMaxHeight * 4 : k);
    *known = base_known && v >= -kMaxHeight && v <= kMaxHeight;
    *out = *known ? static_cast<int32_t>(v) : 0;
}

ZydisRegister full(ZydisRegister r) {
    return ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, r);
}

// A memory operand `disp(%base)` with no index: true with the base and displacement.
bool base_disp(const ZydisDecodedOperand &op, ZydisRegister *base, int64_t *disp) {
    if (op.type != ZYDIS_OPERAND_TYPE_MEMORY || op.mem.index != ZYDIS_REGISTER_NONE) return false;
    *base = op.mem.base;
    *disp = op.mem.disp.value;
    return true;
}

// The effect of one instruction on rsp and rbp. Anything that writes either register in a way
// not listed makes it unknown.
Height step(const ZydisDecodedInstruction &in, const ZydisDecodedOperand *ops, Height h) {
    const int32_t width = in.operand_width / 8;
    switch (in.mnemonic) {
        case ZYDIS_MNEMONIC_PUSH:
        case ZYDIS_MNEMONIC_PUSHF:
        case ZYDIS_MNEMONIC_PUSHFQ:
            set_height(&h.sp_known, &h.sp, h.sp_known, h.sp, -width);
            return h;
        case ZYDIS_MNEMONIC_POP:
            if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && full(ops[0].reg.value) == ZYDIS_REGISTER_RSP)
                h.sp_known = false;
            if (ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER && full(ops[0].reg.value) == ZYDIS_REGISTER_RBP)
                h.bp_known = false;
            set_height(&h.sp_known, &h.sp, h.sp_known, h.sp, width);
            return h;
        case ZYDIS_MNEMONIC_POPF:
        case ZYDIS_MNEMONIC_POPFQ:
            set_height(&h.sp_known, &h.sp, h.sp_known, h.sp, width);
            return h;
        case ZYDIS_MNEMONIC_LEAVE:  // mov %rbp, %rsp; pop %rbp
            set_height(&h.sp_known, &h.sp, h.bp_known, h.bp, 8);
            h.bp_known = false;
            return h;
        case ZYDIS_MNEMONIC_ENTER:
            h.sp_known = h.bp_known = false;
            return h;
        case ZYDIS_MNEMONIC_CALL:
        case ZYDIS_MNEMONIC_RET:
            return h;  // the callee returns with rsp as it was; a ret ends the path
        default:
            break;
    }
    for (int i = 0; i < in.operand_count_visible; i++) {
        const auto &op = ops[i];
        if (op.type != ZYDIS_OPERAND_TYPE_REGISTER || !(op.actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
            continue;
        const ZydisRegister reg = full(op.reg.value);
        if (reg != ZYDIS_REGISTER_RSP && reg != ZYDIS_REGISTER_RBP) continue;
        const bool whole = op.reg.value == ZYDIS_REGISTER_RSP || op.reg.value == ZYDIS_REGISTER_RBP;
        const ZydisDecodedOperand *src = i == 0 && in.operand_count_visible > 1 ? &ops[1] : nullptr;
        ZydisRegister base = ZYDIS_REGISTER_NONE;
        int64_t disp = 0;
        bool done = false;
        if (reg == ZYDIS_REGISTER_RSP && whole && src) {
            if ((in.mnemonic == ZYDIS_MNEMONIC_SUB || in.mnemonic == ZYDIS_MNEMONIC_ADD) &&
                src->type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
                const int64_t k = src->imm.value.s;
                set_height(&h.sp_known, &h.sp, h.sp_known, h.sp, in.mnemonic == ZYDIS_MNEMONIC_SUB ? -k : k);
                done = true;
            } else if (in.mnemonic == ZYDIS_MNEMONIC_MOV && src->type == ZYDIS_OPERAND_TYPE_REGISTER &&
                       src->reg.value == ZYDIS_REGISTER_RBP) {
                h.sp_known = h.bp_known;
                h.sp = h.bp;
                done = true;
            } else if (in.mnemonic == ZYDIS_MNEMONIC_LEA && base_disp(*src, &base, &disp) &&
                       (base == ZYDIS_REGISTER_RSP || base == ZYDIS_REGISTER_RBP)) {
                const bool from_sp = base == ZYDIS_REGISTER_RSP;
                set_height(&h.sp_known, &h.sp, from_sp ? h.sp_known : h.bp_known, from_sp ? h.sp : h.bp,
                           disp);
                done = true;
            }
            if (!done) h.sp_known = false;
        } else if (reg == ZYDIS_REGISTER_RSP) {
            h.sp_known = false;
        } else if (whole && src && in.mnemonic == ZYDIS_MNEMONIC_MOV &&
                   src->type == ZYDIS_OPERAND_TYPE_REGISTER && src->reg.value == ZYDIS_REGISTER_RSP) {
            h.bp_known = h.sp_known;
            h.bp = h.sp;
        } else if (whole && src && in.mnemonic == ZYDIS_MNEMONIC_LEA && base_disp(*src, &base, &disp) &&
                   base == ZYDIS_REGISTER_RSP) {
            set_height(&h.bp_known, &h.bp, h.sp_known, h.sp, disp);
        } else {
            h.bp_known = false;  // rbp used as a general register: nothing is known of it
        }
    }
    return h;
}

struct Decoded {
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};

// The targets inside the function of the jump tables its code refers to: tables of 32-bit
// offsets from the table (gcc's and clang's PIC switches, addressed rip-relative) and of 8-byte
// addresses (non-PIC). A table ends where an entry stops landing in the function.
void table_targets(const ZydisDecoder &dec, const std::vector<uint8_t> &code, uintptr_t func,
                   std::vector<uintptr_t> *out) {
    const uintptr_t end = func + code.size();
    for (size_t off = 0; off < code.size();) {
        Decoded d;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data() + off, code.size() - off, &d.in, d.ops))) {
            off++;
            continue;
        }
        const uintptr_t pc = func + off;
        for (int i = 0; i < d.in.operand_count_visible; i++) {
            const auto &op = d.ops[i];
            if (op.type != ZYDIS_OPERAND_TYPE_MEMORY) continue;
            uintptr_t table = 0;
            int width = 0;
            if (op.mem.base == ZYDIS_REGISTER_RIP) {
                table = pc + d.in.length + static_cast<uintptr_t>(op.mem.disp.value);
                width = 4;
            } else if (op.mem.base == ZYDIS_REGISTER_NONE && op.mem.index != ZYDIS_REGISTER_NONE &&
                       op.mem.scale == 8 && op.mem.disp.has_displacement) {
                table = static_cast<uintptr_t>(op.mem.disp.value);
                width = 8;
            }
            if (!width || (table >= func && table < end)) continue;
            for (size_t k = 0; k < kMaxTableEntries; k++) {
                uint8_t e[8];
                if (!read_mem(table + k * width, e, width)) break;
                uintptr_t t;
                if (width == 4) {
                    int32_t rel;
                    std::memcpy(&rel, e, 4);
                    t = table + static_cast<uintptr_t>(static_cast<int64_t>(rel));
                } else {
                    std::memcpy(&t, e, 8);
                }
                if (t < func || t >= end) break;
                out->push_back(t);
            }
        }
        off += d.in.length;
    }
}

bool follow(uintptr_t func, size_t len, uintptr_t pc, FrameHeight *out) {
    if (len == 0 || len > kMaxFunction || pc < func || pc >= func + len) return false;
    std::vector<uint8_t> code(len);
    if (!read_mem(func, code.data(), len)) return false;
    ZydisDecoder dec;
    ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);

    std::vector<Height> at(len);
    std::vector<uint8_t> ilen(len, 0);  // 0: no instruction starts here (yet)
    std::vector<uint8_t> seen(len, 0);
    std::vector<std::pair<size_t, Height>> work;
    std::vector<uintptr_t> tables;
    bool tables_read = false;
    Height entry;
    entry.sp_known = true;
    entry.sp = 8;  // the return address
    work.push_back({0, entry});
    while (!work.empty()) {
        auto [off, h] = work.back();
        work.pop_back();
        if (seen[off]) {
            Height m = meet(at[off], h);
            if (m == at[off]) continue;
            h = m;
        }
        Decoded d;
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, code.data() + off, len - off, &d.in, d.ops)))
            return false;  // a path runs into bytes that are not code: the model is wrong
        seen[off] = 1;
        at[off] = h;
        ilen[off] = d.in.length;
        const Height next = step(d.in, d.ops, h);
        const uintptr_t here = func + off;
        const size_t fall = off + d.in.length;
        auto go = [&](uintptr_t target) {
            if (target >= func && target < func + len) work.push_back({target - func, next});
        };
        switch (d.in.meta.category) {
            case ZYDIS_CATEGORY_RET:
                break;
            case ZYDIS_CATEGORY_UNCOND_BR:
                if (d.in.raw.imm[0].is_relative) {
                    go(here + d.in.length + static_cast<uintptr_t>(d.in.raw.imm[0].value.s));
                } else {
                    // An indirect jump: a switch's table (followed to every case it lists), or a
                    // tail call (no case of this function, nothing to follow).
                    if (!tables_read) {
                        table_targets(dec, code, func, &tables);
                        tables_read = true;
                    }
                    for (uintptr_t t : tables) go(t);
                }
                break;
            case ZYDIS_CATEGORY_COND_BR:
                go(here + d.in.length + static_cast<uintptr_t>(d.in.raw.imm[0].value.s));
                go(func + fall);
                break;
            default:
                if (d.in.mnemonic == ZYDIS_MNEMONIC_UD2 || d.in.mnemonic == ZYDIS_MNEMONIC_HLT ||
                    d.in.mnemonic == ZYDIS_MNEMONIC_INT3)
                    break;
                go(func + fall);
        }
    }
    // The instruction containing pc (a return address - 1 lies inside its call).
    size_t off = pc - func;
    for (size_t back = 0; back < 16 && back <= off; back++) {
        const size_t s = off - back;
        if (ilen[s] && s + ilen[s] > off) {
            if (!at[s].sp_known) return false;
            out->cfa_minus_sp = at[s].sp;
            out->bp_known = at[s].bp_known;
            out->cfa_minus_bp = at[s].bp;
            return true;
        }
    }
    return false;
}

}  // namespace height
}  // namespace

bool frame_height_at(uintptr_t func, size_t len, uintptr_t pc, FrameHeight *out) {
    return height::follow(func, len, pc, out);
}

}  // namespace graft::arch
