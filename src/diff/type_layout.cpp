#include "diff/type_layout.hpp"

#include "diff/object_dwarf.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <set>

namespace graft::diff {
namespace {

void collect(Dwarf_Die *parent, const std::string &prefix, std::map<std::string, TypeLayout> *out,
             int depth) {
    if (depth > 16) return;
    Dwarf_Die d;
    if (dwarf_child(parent, &d) != 0) return;
    do {
        const int tag = dwarf_tag(&d);
        const char *name = dwarf_diename(&d);
        if (tag == DW_TAG_namespace) {
            collect(&d, prefix + (name ? name : "(anonymous)") + "::", out, depth + 1);
            continue;
        }
        if (tag != DW_TAG_structure_type && tag != DW_TAG_class_type && tag != DW_TAG_union_type) continue;
        if (!name || dwarf_hasattr(&d, DW_AT_declaration)) continue;
        TypeLayout t;
        t.kind = tag == DW_TAG_union_type ? "union" : tag == DW_TAG_class_type ? "class" : "struct";
        Dwarf_Word size = 0;
        Dwarf_Attribute a;
        if (dwarf_attr(&d, DW_AT_byte_size, &a) && dwarf_formudata(&a, &size) == 0) t.size = size;
        Dwarf_Die m;
        if (dwarf_child(&d, &m) == 0) do {
                if (dwarf_tag(&m) != DW_TAG_member && dwarf_tag(&m) != DW_TAG_inheritance) continue;
                Dwarf_Word off = 0;
                if (dwarf_attr(&m, DW_AT_data_member_location, &a)) dwarf_formudata(&a, &off);
                const char *mn = dwarf_diename(&m);
                t.members.push_back({mn ? mn : "(base)", off});
            } while (dwarf_siblingof(&m, &m) == 0);
        (*out)[prefix + name] = t;  // a type is defined the same way wherever a unit repeats it
    } while (dwarf_siblingof(&d, &d) == 0);
}

}  // namespace

std::map<std::string, TypeLayout> type_layouts(const std::string &path) {
    std::map<std::string, TypeLayout> out;
    for_each_unit(path, [&](Dwarf_Die *cu) { collect(cu, "", &out, 0); });
    return out;
}

std::string layout_change(const TypeLayout &before, const TypeLayout &after) {
    if (before.size != after.size)
        return "its size changed (" + std::to_string(before.size) + " to " + std::to_string(after.size) +
               " bytes)";
    std::set<std::string> old_names;
    for (const auto &[n, o] : before.members) old_names.insert(n);
    for (const auto &[n, o] : after.members)
        if (!old_names.count(n)) return "member '" + n + "' is new";
    for (const auto &[n, o] : before.members) {
        bool found = false;
        for (const auto &[an, ao] : after.members)
            if (an == n) {
                found = true;
                if (ao != o)
                    return "member '" + n + "' moved (offset " + std::to_string(o) + " to " +
                           std::to_string(ao) + ")";
            }
        if (!found) return "member '" + n + "' is gone";
    }
    return "its members changed";
}

}  // namespace graft::diff
