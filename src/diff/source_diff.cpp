#include "diff/source_diff.hpp"

#include <sys/stat.h>

#include <climits>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "arch/x86_64/immediates.hpp"
#include "diff/compile_db.hpp"
#include "diff/inline_report.hpp"
#include "diff/source_tree.hpp"
#include "diff/type_layout.hpp"

namespace graft::diff {
namespace {

bool is_source(const std::string &p) {
    for (const char *ext : {".c", ".cc", ".cpp", ".cxx", ".c++", ".C"}) {
        const std::string e = ext;
        if (p.size() > e.size() && p.compare(p.size() - e.size(), e.size(), e) == 0) return true;
    }
    return false;
}

// The headers unit `c` reads (absolute), from the preprocessor's dependency list.
bool headers_of(const CompileCommand &c, const std::string &work, std::set<std::string> *out,
                std::string *why) {
    const std::string dep = work + "/deps.d";
    std::vector<std::string> args = recompile_args(c, "/dev/null");
    // -E with -M: only the dependency list, nothing compiled.
    args.insert(args.end() - 3, {"-E", "-M", "-MF", dep});
    args.erase(args.end() - 3);  // the -c
    std::string log;
    if (run_in(c.directory, args, &log) != 0) {
        *why = "cannot list the headers of '" + c.file + "': " + log.substr(0, log.find('\n'));
        return false;
    }
    std::ifstream in(dep);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string tok;
    std::string text = ss.str();
    for (size_t i = 0; i < text.size(); i++) {
        char ch = text[i];
        if (ch == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
            i++;
            ch = ' ';
        }
        if (ch == ' ' || ch == '\n' || ch == '\t') {
            if (!tok.empty() && tok.back() != ':') out->insert(absolute_in(c.directory, tok));
            tok.clear();
        } else {
            tok += ch;
        }
    }
    if (!tok.empty() && tok.back() != ':') out->insert(absolute_in(c.directory, tok));
    return true;
}

std::string first_lines(const std::string &s, int n) {
    size_t at = 0;
    for (int i = 0; i < n && at != std::string::npos; i++) {
        at = s.find('\n', at);
        if (at != std::string::npos) at++;
    }
    std::string r = s.substr(0, at == std::string::npos ? s.size() : at);
    while (!r.empty() && r.back() == '\n') r.pop_back();
    return r;
}

const Piece *piece_named(const ObjectPieces &o, const std::string &name) {
    for (const Piece &p : o.pieces)
        if (p.func && p.name == name) return &p;
    return nullptr;
}

// A function whose two builds differ only in constants that are line numbers of its unit's file,
// each moved exactly as the fix moves that line: what __LINE__ (assert(), a log macro) does when
// the fix adds or removes lines above it. Then *note says so.
bool only_line_numbers(const Piece &a, const Piece &b, const TouchedFile &file, std::string *note) {
    if (a.size != b.size || a.relocs != b.relocs || a.bytes.size() != b.bytes.size()) return false;
    std::vector<std::pair<int64_t, int64_t>> pairs;
    if (!arch::differ_only_in_immediates(a.bytes.data(), b.bytes.data(), a.bytes.size(), &pairs) ||
        pairs.empty())
        return false;
    std::string moved;
    for (const auto &[o, n] : pairs) {
        if (o < 1 || o > INT32_MAX) return false;
        const int shift = line_shift(file, static_cast<int>(o));
        if (shift == INT32_MIN || shift == 0 || n != o + shift) return false;
        if (moved.size() < 80)
            moved += (moved.empty() ? "" : ", ") + std::to_string(o) + " to " + std::to_string(n);
    }
    *note = "only constants that are lines of " + file.path + " moved by the fix differ (" + moved +
            "): taken as __LINE__ and ignored; check it if the fix meant to change such a constant";
    return true;
}

}  // namespace

bool diff_source(const SourceDiffArgs &a, SourceDiff *out, std::string *why) {
    *out = {};
    auto say = [&](const std::string &s) {
        if (a.progress) a.progress(s);
    };
    std::ifstream fin(a.fix);
    if (!fin) {
        *why = "cannot read the fix '" + a.fix + "'";
        return false;
    }
    std::stringstream fs;
    fs << fin.rdbuf();
    FixFiles files;
    if (!parse_fix(fs.str(), &files, why)) return false;
    std::string dbp = a.compile_db;
    if (dbp.empty()) {
        for (const char *c : {"/compile_commands.json", "/build/compile_commands.json"}) {
            struct stat st {};
            if (stat((a.source + c).c_str(), &st) == 0) {
                dbp = a.source + c;
                break;
            }
        }
        if (dbp.empty()) {
            *why =
                "no compile_commands.json in '" + a.source +
                "' or its build/ (CMake: -DCMAKE_EXPORT_COMPILE_COMMANDS=ON; make: bear -- make; or name one "
                "with --compile-commands)";
            return false;
        }
    }
    std::vector<CompileCommand> db;
    if (!read_compile_db(dbp, &db, why)) return false;

    // The units: each touched source, and each unit that includes a touched header.
    std::vector<const CompileCommand *> units;
    std::set<const CompileCommand *> chosen;
    std::vector<std::string> headers;
    for (const auto &f : files.files) {
        const std::string abs = absolute_in(a.source, f.path);
        bool found = false;
        for (const auto &c : db)
            if (c.file == abs && chosen.insert(&c).second) {
                units.push_back(&c);
                found = true;
            }
        if (found) continue;
        if (is_source(abs) || f.created || f.deleted)
            out->ignored.push_back(f.path);
        else
            headers.push_back(abs);
    }
    if (!headers.empty()) {
        say("finding the units that include " + std::to_string(headers.size()) + " touched header(s) (" +
            std::to_string(db.size()) + " units)");
        std::map<std::string, int> users;
        for (const auto &c : db) {
            std::set<std::string> h;
            if (!headers_of(c, a.work, &h, why)) return false;
            for (const auto &hd : headers)
                if (h.count(hd)) {
                    users[hd]++;
                    if (chosen.insert(&c).second) units.push_back(&c);
                }
        }
        for (const auto &hd : headers) {
            std::string rel = std::filesystem::path(hd).lexically_relative(a.source).string();
            if (!users[hd])
                out->ignored.push_back(rel);
            else
                out->via_headers.push_back(rel + ": " + std::to_string(users[hd]) + " unit(s)");
        }
    }
    if (units.empty()) {
        *why = "the fix touches no file the compilation database '" + dbp + "' compiles or includes";
        return false;
    }

    // Before, then after, each unit compiled with its own command.
    auto compile = [&](const char *side, bool after) {
        const bool for_patch = after && out->units.size() == units.size() && !out->units.empty() &&
                               !out->units.front().after_obj.empty();
        for (size_t i = 0; i < units.size(); i++) {
            const CompileCommand &c = *units[i];
            const std::string obj = a.work + "/" + side + "-" + std::to_string(i) + ".o";
            say(std::string("[") + std::to_string(i + 1) + "/" + std::to_string(units.size()) + "] " + side +
                ": " + std::filesystem::path(c.file).lexically_relative(a.source).string());
            std::string log;
            std::vector<std::string> extra = a.all_flags;
            for (const auto &f : for_patch ? a.patch_flags
                                 : after   ? a.after_flags
                                           : std::vector<std::string>{})
                extra.push_back(f);
            if (run_in(c.directory, recompile_args(c, obj, extra), &log) != 0) {
                *why = std::string("the ") + side + " build of '" + c.file + "' failed:\n" +
                       first_lines(log, 12);
                return false;
            }
            if (for_patch)
                out->units[i].patch_obj = obj;
            else if (after)
                out->units[i].after_obj = obj;
            else
                out->units.push_back({c.file, obj, "", {}, {}, {}, "", c.args.front()});
        }
        return true;
    };
    if (!compile("before", false)) return false;
    {
        AppliedFix fix;
        if (!fix.apply(a.source, files, a.fix, a.work, why)) return false;
        if (!compile("after", true)) return false;
        if (!a.patch_flags.empty() && !compile("patch", true)) return false;
    }  // the tree is put back here, whatever happened
    for (auto &u : out->units) {
        ObjectPieces after;
        if (!read_object(u.before_obj, &u.before, why) || !read_object(u.after_obj, &after, why))
            return false;
        u.diff = diff_objects(u.before, after);
        // Types whose layout changed: code the patch does not replace keeps the old one.
        const auto old_types = type_layouts(u.before_obj), new_types = type_layouts(u.after_obj);
        for (const auto &[name, t] : new_types)
            if (auto it = old_types.find(name); it != old_types.end() && !(it->second == t))
                u.changed_types.push_back({t.kind + " " + name, layout_change(it->second, t)});
        // Why a changed caller changed: the functions it inlined that the fix touches.
        const auto callees = inlined_callees(u.after_obj);
        for (auto &p : u.diff.pieces) {
            auto it = callees.find(p.name);
            if (p.func && p.change == Change::kChanged && it != callees.end())
                p.inlines = touched_callees(it->second, files.files);
        }
        const TouchedFile *own = nullptr;
        for (const auto &f : files.files)
            if (absolute_in(a.source, f.path) == u.file) own = &f;
        if (!own) continue;
        for (auto &p : u.diff.pieces) {
            if (!p.func || p.change != Change::kChanged) continue;
            const Piece *pa = piece_named(u.before, p.before_name), *pb = piece_named(after, p.name);
            if (pa && pb && only_line_numbers(*pa, *pb, *own, &p.note)) p.change = Change::kSame;
        }
    }
    return true;
}

}  // namespace graft::diff
