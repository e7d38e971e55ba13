#include "diff/inline_report.hpp"

#include "diff/object_dwarf.hpp"

#include <dwarf.h>
#include <elfutils/libdw.h>

#include <algorithm>
#include <climits>
#include <set>

namespace graft::diff {
namespace {

std::string die_name(Dwarf_Die *d) {
    Dwarf_Attribute a;
    for (int at : {DW_AT_linkage_name, DW_AT_MIPS_linkage_name, DW_AT_name})
        if (dwarf_attr_integrate(d, at, &a))
            if (const char *s = dwarf_formstring(&a)) return s;
    return {};
}

struct Def {
    std::string name, file;
    int line = 0;
};

// Every inlined_subroutine under `d`, as its abstract origin's name, file and line.
void collect_inlined(Dwarf_Die *d, std::vector<Def> *out, int depth) {
    if (depth > 64) return;
    Dwarf_Die child;
    if (dwarf_child(d, &child) != 0) return;
    do {
        if (dwarf_tag(&child) == DW_TAG_inlined_subroutine) {
            Dwarf_Attribute a;
            Dwarf_Die origin;
            if (dwarf_attr(&child, DW_AT_abstract_origin, &a) && dwarf_formref_die(&a, &origin)) {
                Def def{die_name(&origin), "", 0};
                if (const char *f = dwarf_decl_file(&origin)) def.file = f;
                dwarf_decl_line(&origin, &def.line);
                if (!def.name.empty()) out->push_back(def);
            }
        }
        collect_inlined(&child, out, depth + 1);
    } while (dwarf_siblingof(&child, &child) == 0);
}

bool ends_with_path(const std::string &full, const std::string &rel) {
    if (full == rel) return true;
    return full.size() > rel.size() && full.compare(full.size() - rel.size(), rel.size(), rel) == 0 &&
           full[full.size() - rel.size() - 1] == '/';
}

}  // namespace

std::map<std::string, std::vector<InlinedCallee>> inlined_callees(const std::string &path) {
    std::map<std::string, std::vector<InlinedCallee>> out;
    for_each_unit(path, [&](Dwarf_Die *cu) {
        // Where each function of the unit starts, per file: a definition ends where the next begins.
        std::map<std::string, std::set<int>> starts;
        std::vector<std::pair<std::string, std::vector<Def>>> funcs;
        Dwarf_Die d;
        if (dwarf_child(cu, &d) == 0) do {
                if (dwarf_tag(&d) != DW_TAG_subprogram) continue;
                int line = 0;
                const char *f = dwarf_decl_file(&d);
                if (f && dwarf_decl_line(&d, &line) == 0) starts[f].insert(line);
                if (!dwarf_hasattr(&d, DW_AT_low_pc) && !dwarf_hasattr(&d, DW_AT_ranges)) continue;
                std::vector<Def> inl;
                collect_inlined(&d, &inl, 0);
                const std::string name = die_name(&d);
                if (!name.empty() && !inl.empty()) funcs.push_back({name, inl});
            } while (dwarf_siblingof(&d, &d) == 0);
        for (auto &[name, inl] : funcs) {
            auto &v = out[name];
            for (const Def &def : inl) {
                if (std::any_of(v.begin(), v.end(),
                                [&](const InlinedCallee &c) { return c.name == def.name; }))
                    continue;
                InlinedCallee c{def.name, def.file, def.line, INT32_MAX};
                const auto &s = starts[def.file];
                if (auto it = s.upper_bound(def.line); it != s.end()) c.end_line = *it - 1;
                v.push_back(c);
            }
        }
    });
    return out;
}

std::vector<std::string> touched_callees(const std::vector<InlinedCallee> &callees,
                                         const std::vector<TouchedFile> &files) {
    std::vector<std::string> out;
    for (const InlinedCallee &c : callees) {
        bool touched = false;
        for (const TouchedFile &f : files) {
            if (!ends_with_path(c.file, f.path)) continue;
            for (const Hunk &h : f.hunks) {
                // The new file's lines the hunk adds, and the lines around each place it deletes.
                std::set<int> ctx, lines;
                for (const auto &[o, n] : h.context) ctx.insert(n);
                for (int n = h.new_start; n < h.new_start + h.new_len; n++)
                    if (!ctx.count(n)) lines.insert(n);
                int po = h.old_start - 1, pn = h.new_start - 1;
                for (const auto &[o, n] : h.context) {
                    if (o - po > n - pn) lines.insert({pn, n});
                    po = o;
                    pn = n;
                }
                if (h.old_start + h.old_len - 1 - po > h.new_start + h.new_len - 1 - pn) lines.insert(pn);
                for (int n : lines) touched = touched || (n >= c.line && n <= c.end_line);
            }
        }
        if (touched) out.push_back(c.name);
    }
    return out;
}

}  // namespace graft::diff
