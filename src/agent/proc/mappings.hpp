// The address ranges mapped in the process, from /proc/self/maps: where relocation blocks can go
// (code_blocks.cpp), where a sleeping thread's stack ends (entry_rewrite.cpp), the protection of
// the pages a code write touches (code_writer.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace graft {

// The whole text of /proc/self/maps (one line per mapping); empty if it cannot be read.
std::string read_self_maps();
// [start, end) of every mapping, in address order (the file's); empty if the file cannot be read.
std::vector<std::pair<uintptr_t, uintptr_t>> process_mappings();
// Sets each value of `pages` (page address -> anything) to the PROT_* bits of the mapping that
// holds that page; false if one is not mapped or the protections cannot be read.
bool page_protections(std::map<uintptr_t, int> *pages);

}  // namespace graft
