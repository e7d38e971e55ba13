// graft diff --before OLD.o --after NEW.o [--target FILE|PID] [--json]: which functions and data objects of
// one translation unit a fix changed, compared modulo relocations (diff/object_diff.hpp). The first stage of
// `graft diff` (issue: build a patch from a source change): the comparison and its report, for objects the
// user built before and after the fix with -ffunction-sections -fdata-sections.
#include <cxxabi.h>

#include <cstdlib>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "diff/object_diff.hpp"
#include "diff/target_check.hpp"

namespace graft::cli {

namespace {

struct DiffArgs {
    std::string before, after, target;
    bool json = false;
};

// What a function-level patch must refuse, one phrase with the way out (or empty): changed data.
// New data is the patch's own; removed data stays in the process, unused by the new code.
std::string refusal(const diff::PieceDiff &p) {
    if (p.func || p.change != diff::Change::kChanged) return "";
    return p.tls ? "changed thread-local data: a patch cannot change it in running threads"
                 : "changed data (its layout or initial value): the running process keeps the old "
                   "value; keep the old data and add what the fix needs in a shadow variable";
}

// A C++ name as people read it, or empty when it is not mangled.
std::string demangled(const std::string &name) {
    int st = 0;
    char *d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &st);
    std::string out = st == 0 && d ? d : "";
    std::free(d);
    return out;
}

void run_diff(const DiffArgs &a) {
    diff::ObjectPieces before, after;
    std::string why;
    if (!diff::read_object(a.before, &before, &why) || !diff::read_object(a.after, &after, &why))
        die("diff", why);
    const diff::ObjectDiff d = diff::diff_objects(before, after);
    using diff::Change;
    // The before build must be what runs: every function the fix changes, compared with the
    // target's (a pid names its running program).
    diff::TargetCheck tc;
    if (!a.target.empty()) {
        std::string path = a.target;
        if (path.find_first_not_of("0123456789") == std::string::npos) path = "/proc/" + path + "/exe";
        std::vector<std::string> changed;
        for (const auto &p : d.pieces)
            if (p.func && p.change == Change::kChanged) changed.push_back(p.before_name);
        if (!diff::check_target(before, changed, path, &tc, &why)) die("diff", why);
        if (!tc.differ.empty())
            die("diff",
                "your build does not match the running binary: function " + tc.differ.front() + " differs");
        if (!tc.missing.empty())
            die("diff", "your build does not match the running binary: function " + tc.missing.front() +
                            " is not in '" + path + "' (another build, or inlined into every caller there)");
    }
    if (a.json) {
        nlohmann::json out{{"before", a.before}, {"after", a.after}};
        nlohmann::json funcs = nlohmann::json::array(), data = nlohmann::json::array();
        for (const auto &p : d.pieces) {
            nlohmann::json j{{"name", p.name}, {"change", diff::change_name(p.change)}, {"local", p.local}};
            if (std::string dm = demangled(p.name); !dm.empty()) j["demangled"] = dm;
            if (!p.why.empty()) j["why"] = p.why;
            if (std::string r = refusal(p); !r.empty()) j["refused"] = r;
            (p.func ? funcs : data).push_back(j);
        }
        if (!a.target.empty())
            out["target"] = {{"path", a.target}, {"build_id", tc.build_id}, {"matched", tc.matched}};
        out["functions"] = funcs;
        out["data"] = data;
        out["summary"] = {{"functions",
                           {{"changed", d.count(Change::kChanged, true)},
                            {"new", d.count(Change::kNew, true)},
                            {"removed", d.count(Change::kRemoved, true)},
                            {"same", d.count(Change::kSame, true)}}},
                          {"data",
                           {{"changed", d.count(Change::kChanged, false)},
                            {"new", d.count(Change::kNew, false)},
                            {"removed", d.count(Change::kRemoved, false)},
                            {"same", d.count(Change::kSame, false)}}}};
        std::cout << out.dump(2) << std::endl;
        return;
    }
    for (const auto &p : d.pieces) {
        if (p.change == Change::kSame) continue;
        const std::string dm = demangled(p.name);
        std::cout << diff::change_name(p.change) << "\t" << (p.func ? "function " : "data ")
                  << (dm.empty() ? p.name : dm + " [" + p.name + "]");
        if (!p.why.empty()) std::cout << ": " << p.why;
        if (std::string r = refusal(p); !r.empty()) std::cout << " (refused: " << r << ")";
        std::cout << std::endl;
    }
    std::cout << "graft: diff '" << a.before << "' -> '" << a.after
              << "': " << d.count(Change::kChanged, true) << " function(s) changed, "
              << d.count(Change::kNew, true) << " new, " << d.count(Change::kRemoved, true) << " removed, "
              << d.count(Change::kSame, true) << " unchanged; " << d.count(Change::kChanged, false)
              << " data object(s) changed, " << d.count(Change::kNew, false) << " new" << std::endl;
    if (!a.target.empty())
        std::cout << "graft: diff: the before build matches '" << a.target << "' (build-id "
                  << (tc.build_id.empty() ? "none" : tc.build_id) << "): " << tc.matched
                  << " changed function(s) compared" << std::endl;
}

}  // namespace

void add_diff(CLI::App &app) {
    auto *sub = app.add_subcommand(
        "diff", "Compare a translation unit built before and after a fix, function by function");
    auto a = std::make_shared<DiffArgs>();
    sub->add_option("--before", a->before, "the object file built without the fix")->required();
    sub->add_option("--after", a->after, "the object file built with the fix")->required();
    sub->add_option("--target", a->target,
                    "the program or shared object the before build must match (a file, or a pid: its "
                    "running program)");
    sub->add_flag("--json", a->json, "print the comparison as JSON");
    sub->callback([a] { run_diff(*a); });
}

}  // namespace graft::cli
