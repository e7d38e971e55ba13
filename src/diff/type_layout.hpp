// The layout of every named structure, class and union of an object, from its DWARF: `graft diff`
// refuses a fix that changes one, because code the patch does not replace (and every object the
// process already holds) keeps the old layout. Debug information is in every build graft diff
// makes (-g); an object without it has no layouts and nothing is refused for them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace graft::diff {

struct TypeLayout {
    std::string kind;  // "struct", "class", "union"
    uint64_t size = 0;
    std::vector<std::pair<std::string, uint64_t>> members;  // name, byte offset
    bool operator==(const TypeLayout &) const = default;
};

// Named, complete types of the relocatable object at `path`, by name ("ns::name" inside C++
// namespaces). Empty without DWARF.
std::map<std::string, TypeLayout> type_layouts(const std::string &path);

// What differs between two layouts of one type, one phrase.
std::string layout_change(const TypeLayout &before, const TypeLayout &after);

}  // namespace graft::diff
