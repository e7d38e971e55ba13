// The address ranges mapped in the process, from /proc/self/maps: where relocation blocks can go
// (code_blocks.cpp), where a sleeping thread's stack ends (entry_rewrite.cpp).
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace graft {

// [start, end) of every mapping, in address order (the file's); empty if the file cannot be read.
std::vector<std::pair<uintptr_t, uintptr_t>> process_mappings();

}  // namespace graft
