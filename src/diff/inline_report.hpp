// Which functions the compiler inlined into each function of an object, from its DWARF: how
// `graft diff` says why an unchanged-looking caller is in the patch ("inlines clamp_len, which the
// fix changes"). The object is built with -g by graft diff (debug information does not change the
// code gcc and clang emit); without DWARF nothing is reported and nothing else changes.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "diff/unified_diff.hpp"

namespace graft::diff {

struct InlinedCallee {
    std::string name;
    std::string file;  // where it is defined, as the compiler named it
    int line = 0;      // its first line there
    int end_line = 0;  // the line before the next function defined in that file (or INT32_MAX)
};

// For each function of the relocatable object at `path` (by its symbol's name), the functions
// inlined into it (each once). Empty when the object has no DWARF or cannot be read.
std::map<std::string, std::vector<InlinedCallee>> inlined_callees(const std::string &path);

// The callees of `callees` whose definition the fix changes: defined in one of `files` (relative
// to the tree) at lines a hunk adds or changes.
std::vector<std::string> touched_callees(const std::vector<InlinedCallee> &callees,
                                         const std::vector<TouchedFile> &files);

}  // namespace graft::diff
