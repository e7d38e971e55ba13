// graft diff --source DIR --fix FIX.patch [--compile-commands DB | --build CMD] [--target FILE|PID]
//            [-o PATCH.so [--with FILE]... [--with-args ARG]...] [--json]
// graft diff --before OLD.o --after NEW.o [--target FILE|PID] [--json]
// Which functions and data objects a fix changes: the units it touches compiled before and after
// it with the target's own commands (diff/source_diff.hpp), or two objects the user built, compared
// modulo relocations (diff/object_diff.hpp), the before build checked against the running binary
// (diff/target_check.hpp); with -o, the patch that brings the fix into the running target
// (diff/patch_build.hpp).
#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/client.hpp"
#include "cli/commands.hpp"
#include "diff/object_diff.hpp"
#include "diff/patch_build.hpp"
#include "diff/source_diff.hpp"
#include "diff/source_tree.hpp"
#include "diff/target_check.hpp"
#include "diff/target_symbols.hpp"

namespace graft::cli {

namespace {

struct DiffArgs {
    std::string before, after, target;          // two objects
    std::string source, fix, compile_db, keep;  // or a source tree and a fix
    std::string build;                          // or a build command to learn the compiler commands from
    std::string output;                         // the patch to write
    std::vector<std::string> with, with_args;   // the author's own files for it
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

std::string joined(const std::vector<std::string> &v) {
    std::string s;
    for (const auto &x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
}

// A C++ name as people read it, or empty when it is not mangled.
std::string demangled(const std::string &name) {
    int st = 0;
    char *d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &st);
    std::string out = st == 0 && d ? d : "";
    std::free(d);
    return out;
}

struct Unit {
    std::string label;  // the source file, or "OLD.o' -> 'NEW.o"
    const diff::ObjectPieces *before;
    const diff::ObjectDiff *diff;
    const std::vector<std::pair<std::string, std::string>> *types = nullptr;  // layouts the fix changes
};

const char *kLayoutRefusal =
    "code the patch does not replace, and every object the process holds, keep the old layout; keep the type "
    "as it is and add what the fix needs in a shadow variable";

size_t total(const std::vector<Unit> &units, diff::Change c, bool funcs) {
    size_t n = 0;
    for (const auto &u : units) n += u.diff->count(c, funcs);
    return n;
}

nlohmann::json summary_json(const std::vector<Unit> &units) {
    using diff::Change;
    nlohmann::json s;
    for (bool f : {true, false})
        s[f ? "functions" : "data"] = {{"changed", total(units, Change::kChanged, f)},
                                       {"new", total(units, Change::kNew, f)},
                                       {"removed", total(units, Change::kRemoved, f)},
                                       {"same", total(units, Change::kSame, f)}};
    return s;
}

std::string summary_text(const std::vector<Unit> &units) {
    using diff::Change;
    return std::to_string(total(units, Change::kChanged, true)) + " function(s) changed, " +
           std::to_string(total(units, Change::kNew, true)) + " new, " +
           std::to_string(total(units, Change::kRemoved, true)) + " removed, " +
           std::to_string(total(units, Change::kSame, true)) + " unchanged; " +
           std::to_string(total(units, Change::kChanged, false)) + " data object(s) changed, " +
           std::to_string(total(units, Change::kNew, false)) + " new";
}

void pieces_json(const diff::ObjectDiff &d, nlohmann::json *out) {
    nlohmann::json funcs = nlohmann::json::array(), data = nlohmann::json::array();
    for (const auto &p : d.pieces) {
        nlohmann::json j{{"name", p.name}, {"change", diff::change_name(p.change)}, {"local", p.local}};
        if (std::string dm = demangled(p.name); !dm.empty()) j["demangled"] = dm;
        if (!p.why.empty()) j["why"] = p.why;
        if (!p.note.empty()) j["note"] = p.note;
        if (!p.inlines.empty()) j["inlines"] = p.inlines;
        if (std::string r = refusal(p); !r.empty()) j["refused"] = r;
        (p.func ? funcs : data).push_back(j);
    }
    (*out)["functions"] = funcs;
    (*out)["data"] = data;
}

void pieces_text(const diff::ObjectDiff &d) {
    for (const auto &p : d.pieces) {
        if (p.change == diff::Change::kSame) {
            if (!p.note.empty())
                std::cout << "note\t" << (p.func ? "function " : "data ") << p.name << ": " << p.note
                          << std::endl;
            continue;
        }
        const std::string dm = demangled(p.name);
        std::cout << diff::change_name(p.change) << "\t" << (p.func ? "function " : "data ")
                  << (dm.empty() ? p.name : dm + " [" + p.name + "]");
        if (!p.why.empty()) std::cout << ": " << p.why;
        if (!p.inlines.empty())
            std::cout << "; it inlines " << joined(p.inlines) << ", which the fix changes";
        if (std::string r = refusal(p); !r.empty()) std::cout << " (refused: " << r << ")";
        std::cout << std::endl;
    }
}

std::string target_path(const std::string &target) {
    return target.find_first_not_of("0123456789") == std::string::npos ? "/proc/" + target + "/exe" : target;
}

// The before build must be what runs: every function the fix changes, compared with the target's
// (a pid names its running program). Dies with the sentence when it is not.
diff::TargetCheck check_against(const std::string &target, const std::vector<Unit> &units) {
    const std::string path = target_path(target);
    diff::TargetCheck all;
    for (const auto &u : units) {
        std::vector<std::string> changed;
        for (const auto &p : u.diff->pieces)
            if (p.func && p.change == diff::Change::kChanged) changed.push_back(p.before_name);
        diff::TargetCheck tc;
        std::string why;
        if (!diff::check_target(*u.before, changed, path, &tc, &why)) die("diff", why);
        if (!tc.differ.empty())
            die("diff",
                "your build does not match the running binary: function " + tc.differ.front() + " differs");
        if (!tc.missing.empty())
            die("diff", "your build does not match the running binary: function " + tc.missing.front() +
                            " is not in '" + path + "' (another build, or inlined into every caller there)");
        all.build_id = tc.build_id;
        all.matched += tc.matched;
    }
    return all;
}

// Every piece the fix changes that a function-level patch cannot carry: one line each, and none
// of the patch is built.
void refuse_unpatchable(const std::vector<Unit> &units) {
    std::string lines;
    for (const auto &u : units)
        for (const auto &p : u.diff->pieces)
            if (std::string r = refusal(p); !r.empty()) lines += "\n  " + u.label + ": " + p.name + ": " + r;
    for (const auto &u : units)
        for (const auto &[type, why] :
             u.types ? *u.types : std::vector<std::pair<std::string, std::string>>{})
            lines += "\n  " + u.label + ": " + type + ": " + why + ": " + kLayoutRefusal;
    if (!lines.empty()) die("diff", "the fix cannot be a live patch:" + lines);
}

nlohmann::json contents_json(const diff::PatchContents &c, const std::string &out) {
    nlohmann::json f = nlohmann::json::array();
    for (const auto &fn : c.funcs) f.push_back({{"name", fn.name}, {"sympos", fn.sympos}, {"why", fn.why}});
    return {{"output", out},
            {"object", c.object.empty() ? "main" : c.object},
            {"functions", f},
            {"references", c.refs}};
}

void report(const DiffArgs &a, const std::vector<Unit> &units, const diff::SourceDiff *src,
            const diff::PatchContents *patch = nullptr) {
    diff::TargetCheck tc;
    if (!a.target.empty()) tc = check_against(a.target, units);
    if (a.json) {
        nlohmann::json out;
        if (src) {
            out = {{"source", a.source}, {"fix", a.fix}, {"units", nlohmann::json::array()}};
            for (const auto &u : units) {
                nlohmann::json j{{"file", u.label}};
                pieces_json(*u.diff, &j);
                j["types"] = nlohmann::json::array();
                for (const auto &[type, why] : *u.types)
                    j["types"].push_back({{"name", type}, {"why", why}, {"refused", kLayoutRefusal}});
                out["units"].push_back(j);
            }
            out["ignored"] = src->ignored;
            out["headers"] = src->via_headers;
        } else {
            out = {{"before", a.before}, {"after", a.after}};
            pieces_json(*units.front().diff, &out);
        }
        if (!a.target.empty())
            out["target"] = {{"path", a.target}, {"build_id", tc.build_id}, {"matched", tc.matched}};
        out["summary"] = summary_json(units);
        if (patch) out["patch"] = contents_json(*patch, a.output);
        std::cout << out.dump(2) << std::endl;
        return;
    }
    if (src) {
        for (const auto &h : src->via_headers) std::cout << "graft: diff: header " << h << std::endl;
        for (const auto &f : src->ignored)
            std::cout << "graft: diff: ignored '" << f << "': no unit compiles or includes it" << std::endl;
        for (const auto &u : units) {
            std::cout << "graft: diff: unit '" << u.label << "': " << summary_text({u}) << std::endl;
            pieces_text(*u.diff);
            for (const auto &[type, why] : *u.types)
                std::cout << "changed\ttype " << type << ": " << why << " (refused: " << kLayoutRefusal << ")"
                          << std::endl;
        }
        std::cout << "graft: diff: " << units.size() << " unit(s): " << summary_text(units) << std::endl;
    } else {
        pieces_text(*units.front().diff);
        std::cout << "graft: diff '" << a.before << "' -> '" << a.after << "': " << summary_text(units)
                  << std::endl;
    }
    if (!a.target.empty())
        std::cout << "graft: diff: the before build matches '" << a.target << "' (build-id "
                  << (tc.build_id.empty() ? "none" : tc.build_id) << "): " << tc.matched
                  << " changed function(s) compared" << std::endl;
    if (patch) {
        size_t replaced = 0;
        for (const auto &f : patch->funcs) {
            const std::string dm = demangled(f.name);
            std::cout << "patch\t" << (dm.empty() ? f.name : dm + " [" + f.name + "]");
            if (f.sympos) std::cout << " (position " << f.sympos << ")";
            std::cout << ": " << f.why << std::endl;
            replaced += f.why.rfind("changed", 0) == 0;
        }
        std::cout << "graft: diff: wrote '" << a.output << "': " << replaced << " function(s) of "
                  << (patch->object.empty() ? "main" : patch->object) << " replaced, "
                  << patch->funcs.size() - replaced << " more carried, " << patch->refs
                  << " reference(s) to the target" << std::endl;
    }
}

void run_diff(const DiffArgs &a) {
    std::string why;
    if (!a.before.empty() || !a.after.empty()) {
        if (a.before.empty() || a.after.empty() || !a.source.empty())
            die("diff", "give either --before and --after (two objects), or --source and --fix");
        diff::ObjectPieces before, after;
        if (!diff::read_object(a.before, &before, &why) || !diff::read_object(a.after, &after, &why))
            die("diff", why);
        const diff::ObjectDiff d = diff::diff_objects(before, after);
        report(a, {{a.before, &before, &d, nullptr}}, nullptr);
        return;
    }
    if (a.source.empty() || a.fix.empty())
        die("diff", "give either --before and --after (two objects), or --source and --fix");
    diff::SourceDiffArgs sa;
    sa.source = std::filesystem::absolute(a.source).lexically_normal().string();
    while (sa.source.size() > 1 && sa.source.back() == '/') sa.source.pop_back();
    sa.fix = std::filesystem::absolute(a.fix).string();
    sa.compile_db = a.compile_db.empty() ? "" : std::filesystem::absolute(a.compile_db).string();
    if (!a.keep.empty()) {
        sa.work = std::filesystem::absolute(a.keep).string();
        std::filesystem::create_directories(sa.work);
    } else {
        char tmpl[] = "/tmp/graft-diff-XXXXXX";
        if (!mkdtemp(tmpl)) die("diff", std::string("cannot make a work directory: ") + std::strerror(errno));
        sa.work = tmpl;
    }
    sa.progress = [](const std::string &line) { std::cerr << "graft: diff: " << line << std::endl; };
    // The work directory goes however graft diff ends (die() exits).
    static std::string work_to_remove;
    if (a.keep.empty()) {
        work_to_remove = sa.work;
        std::atexit([] {
            std::error_code ec;
            std::filesystem::remove_all(work_to_remove, ec);
        });
    }
    if (!a.build.empty()) {
        if (!sa.compile_db.empty()) die("diff", "give --compile-commands or --build, not both");
        // The build, run under Bear, tells which compiler commands make each unit.
        const std::string db = sa.work + "/compile_commands.json";
        sa.progress("running the build under bear to learn its compiler commands: " + a.build);
        std::string log;
        const int rc = diff::run_in(sa.source, {"bear", "--output", db, "--", "sh", "-c", a.build}, &log);
        if (rc == 127 && log.find("bear") != std::string::npos && !std::filesystem::exists(db))
            die("diff", "cannot run bear, which --build needs (apt-get install bear): " +
                            log.substr(0, log.find('\n')));
        if (rc != 0)
            die("diff", "the build command '" + a.build + "' failed (status " + std::to_string(rc) + "):\n" +
                            log.substr(0, 1500));
        std::error_code ec;
        if (!std::filesystem::exists(db) || std::filesystem::file_size(db, ec) < 8)
            die("diff",
                "the build command '" + a.build +
                    "' compiled nothing: graft diff learns each unit's compiler command from it, so it "
                    "must compile them (build from clean, e.g. 'make clean all' or 'make -B')");
        sa.compile_db = db;
    }
    sa.after_flags = {"-I" + include_dir()};
    sa.all_flags = {"-g"};  // which functions each function inlined (debug information changes no code)
    diff::TargetSymbols ts;
    if (!a.output.empty()) {
        if (a.target.empty())
            die("diff", "-o needs --target: the patch is made for one build of the program or library");
        if (!diff::read_target_symbols(target_path(a.target), &ts, &why)) die("diff", why);
        // The patch's copy of each unit: code that can reach the target's symbols wherever the
        // patch is loaded (patch_object.hpp).
        sa.patch_flags = {"-fno-pic", "-fno-pie", "-mcmodel=large", "-fno-lto", "-I" + include_dir()};
    }
    diff::SourceDiff sd;
    if (!diff::diff_source(sa, &sd, &why)) die("diff", why);
    std::vector<Unit> units;
    for (const auto &u : sd.units)
        units.push_back({std::filesystem::path(u.file).lexically_relative(sa.source).string(), &u.before,
                         &u.diff, &u.changed_types});
    if (a.output.empty()) {
        report(a, units, &sd);
        return;
    }
    refuse_unpatchable(units);
    check_against(a.target, units);
    diff::PatchBuildArgs pa;
    pa.output = a.output;
    pa.work = sa.work;
    pa.include_dir = include_dir();
    pa.with = a.with;
    pa.with_args = a.with_args;
    pa.target = &ts;
    pa.progress = sa.progress;
    std::vector<diff::PatchBuildUnit> pu;
    for (const auto &u : sd.units) pu.push_back({u.file, u.patch_obj, u.compiler, &u.diff});
    diff::PatchContents contents;
    if (!diff::build_patch(pa, pu, &contents, &why)) die("diff", why);
    report(a, units, &sd, &contents);
}

}  // namespace

void add_diff(CLI::App &app) {
    auto *sub = app.add_subcommand(
        "diff", "Compare a translation unit built before and after a fix, function by function");
    auto a = std::make_shared<DiffArgs>();
    sub->add_option("--source", a->source, "the target's source tree, as it was built");
    sub->add_option("--fix", a->fix, "the fix, a unified diff (git diff, a debian/patches file)");
    sub->add_option("--compile-commands", a->compile_db,
                    "the compilation database (default: SOURCE/compile_commands.json, then SOURCE/build/)");
    sub->add_option(
        "--build", a->build,
        "a command that builds the target from SOURCE (run once under bear, before the fix, to learn "
        "each unit's compiler command; instead of --compile-commands)");
    sub->add_option("--keep", a->keep, "keep the objects built before and after the fix in this directory");
    sub->add_option("--before", a->before, "or: the object file built without the fix");
    sub->add_option("--after", a->after, "and the object file built with the fix");
    sub->add_option("--target", a->target,
                    "the program or shared object the before build must match (a file, or a pid: its "
                    "running program)");
    sub->add_option("-o,--output", a->output,
                    "write the patch that brings the fix into the target (needs --source, --fix, --target)");
    sub->add_option("--with", a->with,
                    "a C or C++ file of your own linked into the patch: callbacks, shadow variables, states");
    sub->add_option("--with-args", a->with_args, "a compiler option for the --with files (-I..., -D...)");
    sub->add_flag("--json", a->json, "print the comparison as JSON");
    sub->callback([a] { run_diff(*a); });
}

}  // namespace graft::cli
