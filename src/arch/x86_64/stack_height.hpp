// Where a frame's CFA lies relative to rsp, derived from the function's own code: what objtool
// computes at build time for the kernel's ORC tables, done here on demand for one function.
//
// It answers the one question CFI cannot answer for a thread blocked in a system call: in code
// built with frame pointers, CFI says "CFA = rbp + 16", and the worker knows only the thread's sp
// and pc (from /proc/T/syscall), never its rbp. The instructions of the function say how far rsp
// has moved since the entry at every point: pushes, pops, `sub $k, %rsp`, `mov %rsp, %rbp`,
// `leave`. The function is followed from its entry through every direct branch and every jump
// table that lands in it; an instruction reached with two different heights, or after anything
// that moves rsp by an amount the code does not state (`and $-16, %rsp`, an alloca), has no
// answer, and neither has code the walk never reached. A caller checks each answer against the
// CFI: the distance from the CFA to rbp the code implies must be the one CFI states.
#pragma once
#include <cstddef>
#include <cstdint>

namespace graft::arch {

struct FrameHeight {
    int32_t cfa_minus_sp = 0;  // CFA = rsp + this
    int32_t cfa_minus_bp = 0;  // CFA = rbp + this, when bp_known
    bool bp_known = false;     // rbp holds a value derived from rsp in this function
};

// The heights at the instruction containing `pc` of the function [func, func + len), whose entry
// has CFA = rsp + 8. Reads the function's code and its jump tables through process_vm_readv (the
// object may be going away under the caller). False when the code gives no single answer there.
bool frame_height_at(uintptr_t func, size_t len, uintptr_t pc, FrameHeight *out);

}  // namespace graft::arch
