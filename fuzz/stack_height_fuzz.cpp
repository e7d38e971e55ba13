// The stack-height analysis of frame-pointer functions (src/arch/x86_64/stack_height.cpp) on
// arbitrary bytes taken as a function's code: it follows every path with Zydis and reads the jump
// tables the code addresses through process_vm_readv. It must answer or decline, never fault or
// loop, whatever the bytes. The first input byte picks the pc asked about.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch/x86_64/stack_height.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2 || size > 4096) return 0;
    std::vector<uint8_t> code(data + 1, data + size);
    const auto at = reinterpret_cast<uintptr_t>(code.data());
    const size_t pc = data[0] % code.size();
    graft::arch::FrameHeight h;
    if (graft::arch::frame_height_at(at, code.size(), at + pc, &h) && pc == 0 && h.cfa_minus_sp != 8)
        __builtin_trap();  // at the entry only the return address is on the stack
    return 0;
}
