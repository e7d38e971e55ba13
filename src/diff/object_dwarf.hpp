// The DWARF of a relocatable object, unit by unit (libdw): what inline_report and type_layout
// read. dwfl opens the object offline, which applies its relocations to the debug sections
// (names in .debug_str are relocated in a .o).
#pragma once
#include <elfutils/libdw.h>

#include <functional>
#include <string>

namespace graft::diff {

// Calls `f` with the top DIE of each compilation unit of the object at `path`; false (and no
// call) when the object cannot be read or has no DWARF.
bool for_each_unit(const std::string &path, const std::function<void(Dwarf_Die *)> &f);

}  // namespace graft::diff
