#include "diff/patch_build.hpp"

#include <filesystem>
#include <fstream>
#include <set>

#include "diff/patch_object.hpp"
#include "diff/source_tree.hpp"

namespace graft::diff {
namespace {

std::string c_string(const std::string &s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o + "\"";
}

bool is_cxx_source(const std::string &p) {
    for (const char *ext : {".cc", ".cpp", ".cxx", ".c++", ".C"}) {
        const std::string e = ext;
        if (p.size() > e.size() && p.compare(p.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}

std::string base_name(const std::string &p) {
    return std::filesystem::path(p).filename().string();
}

}  // namespace

bool build_patch(const PatchBuildArgs &args, const std::vector<PatchBuildUnit> &units, PatchContents *out,
                 std::string *why) {
    *out = {};
    const TargetSymbols &target = *args.target;
    out->object = target.program ? "" : (!target.soname.empty() ? target.soname : base_name(target.path));
    std::string decls, funcs, relocs;
    std::vector<std::string> objects;
    std::string linker;
    for (size_t u = 0; u < units.size(); u++) {
        const PatchBuildUnit &unit = units[u];
        PatchObjectPlan plan;
        plan.unit = base_name(unit.source);
        plan.tag = "u" + std::to_string(u);
        std::vector<const PieceDiff *> changed;
        for (const PieceDiff &p : unit.diff->pieces) {
            if (p.func && (p.change == Change::kChanged || p.change == Change::kNew))
                plan.keep.insert(p.name);
            if (!p.func && p.change == Change::kNew) plan.new_data.insert(p.name);
            if (!p.before_name.empty() && p.before_name != p.name) plan.target_name[p.name] = p.before_name;
            if (p.func && p.change == Change::kChanged) changed.push_back(&p);
        }
        if (plan.keep.empty()) continue;
        if (unit.patch_obj.empty()) {
            *why = "no patch build of '" + unit.source + "'";
            return false;
        }
        if (args.progress) args.progress("reducing " + base_name(unit.source) + " to the patch's functions");
        PatchObject po;
        const std::string obj = args.work + "/patch-" + plan.tag + ".o";
        if (!make_patch_object(unit.patch_obj, obj, plan, target, &po, why)) return false;
        objects.push_back(obj);
        if (linker.empty() || is_cxx_source(unit.source)) linker = unit.compiler;
        for (const auto &[name, nn] : po.renamed)
            decls += "extern char " + nn + "[] __attribute__((visibility(\"hidden\")));\n";
        for (const PieceDiff *p : changed) {
            unsigned long pos = 0;
            if (!target.sympos(p->before_name, plan.unit, true, &pos, why)) return false;
            funcs += "    {" + c_string(p->before_name) + ", (void *)" + po.renamed[p->name] + ", " +
                     std::to_string(pos) + "},\n";
            std::string why = "changed";
            for (size_t i = 0; i < p->inlines.size(); i++)
                why += (i ? ", " : ": it inlines ") + p->inlines[i];
            if (!p->inlines.empty()) why += ", which the fix changes";
            out->funcs.push_back({p->before_name, pos, why});
        }
        for (const auto &k : plan.keep)
            if (!plan.target_name.count(k) && !target.has(k)) out->funcs.push_back({k, 0, "new"});
        for (const auto &c : po.copied)
            out->funcs.push_back({c, 0,
                                  c.find(".cold") != std::string::npos
                                      ? "copied: the cold part of a function the patch holds"
                                      : "copied: the target has no copy of it (inlined everywhere there)"});
        for (const PatchRef &r : po.refs) {
            relocs += "    {" + r.holder + " + " + std::to_string(r.offset) + ", " +
                      (out->object.empty() ? std::string("0") : c_string(out->object)) + ", " +
                      c_string(r.name) + ", " + std::to_string(r.sympos) + ", " + std::to_string(r.addend) +
                      "L},\n";
            out->refs++;
        }
    }
    if (funcs.empty()) {
        *why = "the fix changes no function of the target: there is nothing to patch";
        return false;
    }
    // The descriptor. The author's files may define the object's callbacks and the patch's
    // states under these names (docs/patch-authors-guide.md); weak, so that they are optional.
    std::string d = "#include <graft/graft.h>\n" + decls;
    for (const char *cb : {"pre_patch", "post_patch", "pre_unpatch", "post_unpatch"})
        d += std::string("extern ") + (std::string(cb) == "pre_patch" ? "int" : "void") + " graft_diff_" +
             cb + "(struct graft_object *) __attribute__((weak, visibility(\"hidden\")));\n";
    d += "extern struct graft_state graft_diff_states[] __attribute__((weak, visibility(\"hidden\")));\n";
    d += "static struct graft_func graft_diff_funcs[] = {\n" + funcs + "    {0, 0, 0}};\n";
    d += "static struct graft_object graft_diff_objects[] = {\n    {" +
         (out->object.empty() ? std::string("0") : c_string(out->object)) +
         ", graft_diff_funcs, {graft_diff_pre_patch, graft_diff_post_patch, graft_diff_pre_unpatch, "
         "graft_diff_post_unpatch}},\n    {0, 0, {0, 0, 0, 0}}};\n";
    d += "static struct graft_patch graft_diff_patch = {0, graft_diff_objects, graft_diff_states, false};\n";
    d += "GRAFT_PATCH(graft_diff_patch);\n";
    d += "static const struct graft_reloc graft_diff_relocs[] = {\n" + relocs + "    {0, 0, 0, 0, 0}};\n";
    d += "__attribute__((visibility(\"default\"))) const struct graft_reloc *graft_patch_relocs(\n"
         "    const struct graft_reloc **end) {\n    *end = graft_diff_relocs + " +
         std::to_string(out->refs) + ";\n    return graft_diff_relocs;\n}\n";
    d += "struct graft_target_record { const char *object; const char *build_id; };\n"
         "__attribute__((visibility(\"default\"))) const struct graft_target_record graft_patch_targets[] = "
         "{\n"
         "    {" +
         (out->object.empty() ? std::string("0") : c_string(out->object)) + ", " + c_string(target.build_id) +
         "},\n    {0, 0}};\n";
    const std::string desc = args.work + "/descriptor.c";
    std::ofstream(desc) << d;

    if (args.progress) args.progress("linking " + args.output);
    std::vector<std::string> link{linker.empty() ? "cc" : linker, "-shared", "-fPIC", "-O2", "-g",
                                  "-I" + args.include_dir,
                                  // The units' code is not position-independent: its absolute
                                  // fields are relocated where the patch is loaded.
                                  "-Wl,-z,notext",
                                  // The agent writes the target's addresses into data fields too.
                                  "-Wl,-z,norelro", "-Wl,--build-id", "-Wl,--gc-sections", "-Wl,-Bsymbolic",
                                  "-o", args.work + "/patch.so"};
    for (const auto &o : objects) link.push_back(o);
    for (const auto &a : args.with_args) link.push_back(a);
    link.insert(link.end(), {"-x", "c", desc, "-x", "none"});
    for (const auto &w : args.with) link.push_back(w);
    std::string log;
    if (run_in(args.work, link, &log) != 0) {
        *why = "linking the patch failed:\n" + log.substr(0, 2000);
        return false;
    }
    std::error_code ec;
    std::filesystem::copy_file(args.work + "/patch.so", args.output,
                               std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) {
        *why = "cannot write '" + args.output + "': " + ec.message();
        return false;
    }
    return true;
}

}  // namespace graft::diff
