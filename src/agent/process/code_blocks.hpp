// Executable memory for the relocation blocks of ordinary entries (arch/x86_64/relocate.hpp):
// within a 32-bit offset of the code that jumps to them. Blocks are never freed: a thread may
// still be running in one long after the entry that led there was restored, and a block costs
// 128 bytes. Core mutex.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace graft {

// A block of `size` bytes (<= 4096) whose every byte is within +-1.75 GiB of `near`; 0 and the
// reason in *why if there is no room. The memory reads as int3 until written with write_code().
// The block's data lies arch::kBlockSlotDistance bytes after it, in a page that is writable and
// never executable (its bytes at first zero): its slot (arch/x86_64/relocate.hpp).
uintptr_t alloc_code_block(uintptr_t near, size_t size, std::string *why);

}  // namespace graft
