// The relocation planner of ordinary entries (src/arch/x86_64/relocate.cpp) on arbitrary bytes
// taken as a function's code: it decodes them with Zydis, follows branches and reads jump
// tables through process_vm_readv. It must refuse or plan, never fault, whatever the bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "arch/x86_64/relocate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0 || size > 4096) return 0;
    std::vector<uint8_t> code(data, data + size);
    auto at = reinterpret_cast<uintptr_t>(code.data());
    graft::arch::EntryRewrite r;
    std::string why;
    if (graft::arch::plan_entry_rewrite(at, size, at + (1u << 20), &r, &why)) {
        // A plan moves whole instructions covering at least the jump, into a block that fits.
        if (r.displaced < graft::arch::kEntryJumpSize || r.block_len > graft::arch::kBlockSize || r.at < at ||
            r.at + r.displaced > at + size)
            __builtin_trap();
    } else if (why.empty()) {
        __builtin_trap();  // every refusal says why
    }
    return 0;
}
