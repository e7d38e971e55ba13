// One row of an object's call-frame information, reduced to what a stack walk needs: where the
// frame's CFA is, where the return address and the caller's rbp are. Shared by the agent (frame
// rules for its handlers, walks of blocked threads) and `graft attach` (where a thread it may
// borrow stands), both with libdw.
#pragma once
#include <elfutils/libdwfl.h>

#include <cstddef>
#include <cstdint>

namespace graft {

struct FrameRule {
    enum Kind : uint8_t {
        kOther,      // anything else: signal frames, expressions, no CFI; libgcc decides
        kRspCfa,     // CFA = rsp + cfa_offset, return address at CFA - 8
        kRbpCfa,     // CFA = rbp + cfa_offset, return address at CFA - 8
        kOutermost,  // CFA = rsp + cfa_offset, return address undefined: a thread's root
    } kind = kOther;
    enum Rbp : uint8_t {
        kRbpSame,     // the caller's rbp is this frame's
        kRbpAtCfa,    // saved at CFA + rbp_offset
        kRbpUnknown,  // undefined or anything else: a later rbp-based CFA cannot be computed
    } rbp = kRbpUnknown;
    int32_t cfa_offset = 0;
    int32_t rbp_offset = 0;
};

// The rule at `pc` (libdw; the agent's worker, and `graft attach` for another process), and the CFI row as
// libdw reports it: [pc, *hi) is exactly part of that row; *lo may lie before the row's true start
// (cfi_rule.cpp). kOther with *lo == *hi == 0 when the pc has no CFI in any module.
FrameRule frame_rule_compute(Dwfl *dwfl, uintptr_t pc, uintptr_t *lo, uintptr_t *hi);

// The frame's CFA under rule `r` with the frame's rsp and rbp; false for a thread's root and for a
// frame the rule cannot climb (kOther, or an rbp-based CFA while rbp is unknown).
inline bool frame_cfa(const FrameRule &r, uintptr_t sp, uintptr_t bp, bool bp_known, uintptr_t *cfa) {
    if (r.kind == FrameRule::kRspCfa)
        *cfa = sp + static_cast<uintptr_t>(r.cfa_offset);
    else if (r.kind == FrameRule::kRbpCfa && bp_known)
        *cfa = bp + static_cast<uintptr_t>(r.cfa_offset);
    else
        return false;
    return true;
}

// The caller's rbp under rule `r`, given the frame's CFA: read where the frame saved it
// (read(addr, &word) reads one stack word, false if it cannot), unchanged when the frame left it
// alone, unknown otherwise.
template <class Read>
inline void frame_caller_rbp(const FrameRule &r, uintptr_t cfa, Read read, uintptr_t *bp, bool *bp_known) {
    if (r.rbp == FrameRule::kRbpAtCfa)
        *bp_known = read(cfa + static_cast<uintptr_t>(static_cast<intptr_t>(r.rbp_offset)), bp);
    else if (r.rbp == FrameRule::kRbpUnknown)
        *bp_known = false;
}

}  // namespace graft
