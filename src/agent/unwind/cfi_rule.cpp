#include "agent/unwind/cfi_rule.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <cstdlib>

namespace graft {
namespace {

constexpr int kRsp = 7, kRbp = 6, kRa = 16;  // DWARF register numbers (x86-64 psABI)

// A location "CFA + n" as libdw describes it: DW_OP_call_frame_cfa then (consts n, plus) or
// plus_uconst n.
bool at_cfa_offset(const Dwarf_Op *ops, size_t n, int32_t *off) {
    if (n == 3 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_consts &&
        ops[2].atom == DW_OP_plus) {
        *off = static_cast<int32_t>(static_cast<int64_t>(ops[1].number));
        return true;
    }
    if (n == 2 && ops[0].atom == DW_OP_call_frame_cfa && ops[1].atom == DW_OP_plus_uconst) {
        *off = static_cast<int32_t>(static_cast<int64_t>(ops[1].number));
        return true;
    }
    return false;
}

}  // namespace

FrameRule frame_rule_compute(Dwfl *dwfl, uintptr_t pc, uintptr_t *lo, uintptr_t *hi) {
    FrameRule rule;
    *lo = *hi = 0;
    Dwfl_Module *m = dwfl ? dwfl_addrmodule(dwfl, pc) : nullptr;
    if (!m) return rule;
    Dwarf_Addr bias = 0;
    Dwarf_Frame *fr = nullptr;
    Dwarf_CFI *cfi = dwfl_module_eh_cfi(m, &bias);
    if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &fr) != 0) {
        fr = nullptr;
        cfi = dwfl_module_dwarf_cfi(m, &bias);
        if (!cfi || dwarf_cfi_addrframe(cfi, pc - bias, &fr) != 0) return rule;
    }
    bool signal_frame = false;
    Dwarf_Addr start = 0, end = 0;
    int ra = dwarf_frame_info(fr, &start, &end, &signal_frame);
    // libdw's end of the row is where the CFI program next advances past pc: exact. Its start
    // is not always: after DW_CFA_restore_state it is the start of the row that was remembered
    // (seen with gcc's code after an early return). It is never later than the true start, so
    // [pc, end) is always one row, and [start, end) only when start is known to begin a row.
    if (end + bias > pc && start + bias <= pc) {
        *lo = start + bias;
        *hi = end + bias;
    }
    Dwarf_Op *ops = nullptr;
    size_t nops = 0;
    Dwarf_Op mem[3];
    if (ra == kRa && !signal_frame && dwarf_frame_cfa(fr, &ops, &nops) == 0 && nops == 1 &&
        ops[0].atom == DW_OP_bregx && (ops[0].number == kRsp || ops[0].number == kRbp)) {
        const bool on_rsp = ops[0].number == kRsp;
        const auto off = static_cast<int64_t>(ops[0].number2);
        Dwarf_Op *rops = nullptr;
        size_t rn = 0;
        int32_t ra_off = 0;
        if (off > 0 && off < (1 << 20) && dwarf_frame_register(fr, kRa, mem, &rops, &rn) == 0) {
            rule.cfa_offset = static_cast<int32_t>(off);
            if (rn == 0 && rops == mem && on_rsp)
                rule.kind = FrameRule::kOutermost;
            else if (at_cfa_offset(rops, rn, &ra_off) && ra_off == -8)
                rule.kind = on_rsp ? FrameRule::kRspCfa : FrameRule::kRbpCfa;
        }
        int32_t bp_off = 0;
        if (rule.kind != FrameRule::kOther && dwarf_frame_register(fr, kRbp, mem, &rops, &rn) == 0) {
            if (rn == 0 && rops == nullptr) {
                rule.rbp = FrameRule::kRbpSame;
            } else if (at_cfa_offset(rops, rn, &bp_off) && bp_off < 0 && bp_off > -(1 << 20)) {
                rule.rbp = FrameRule::kRbpAtCfa;
                rule.rbp_offset = bp_off;
            }
        }
    }
    if (rule.kind == FrameRule::kOther) rule = FrameRule{};
    free(fr);
    return rule;
}

}  // namespace graft
