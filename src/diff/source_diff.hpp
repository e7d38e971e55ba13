// `graft diff` from a source tree and a fix: the translation units the fix touches (its source
// files, and the units that include a header it touches) are compiled before and after the fix
// with the target's own commands (compile_db.hpp), and each unit's two objects compared
// (object_diff.hpp).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "diff/object_diff.hpp"
#include "diff/unified_diff.hpp"

namespace graft::diff {

struct UnitDiff {
    std::string file;                   // the unit's source, absolute
    std::string before_obj, after_obj;  // the objects, under the work directory
    ObjectPieces before;                // kept for the check against the target
    ObjectDiff diff;
    // Types whose layout the fix changes: "struct session" and what differs (type_layout.hpp).
    std::vector<std::pair<std::string, std::string>> changed_types;
    std::string patch_obj;  // after the fix, built for the patch (SourceDiffArgs::patch_flags)
    std::string compiler;   // the unit's compiler, as its command names it
};

struct SourceDiff {
    std::vector<UnitDiff> units;
    std::vector<std::string> ignored;      // touched files no unit compiles or includes
    std::vector<std::string> via_headers;  // "header: N units" for each touched header
};

struct SourceDiffArgs {
    std::string source;      // the tree, absolute
    std::string fix;         // the unified diff's path
    std::string compile_db;  // empty: <source>/compile_commands.json, else <source>/build/...
    std::string work;        // where objects go
    // When not empty: each unit is also built after the fix with these options added, for the
    // patch (patch_object.hpp).
    std::vector<std::string> patch_flags;
    // Added to the after build (graft's headers: a fix in its live-patch form may use the API).
    std::vector<std::string> after_flags;
    // Added to every build (-g: which functions each one inlined, inline_report.hpp).
    std::vector<std::string> all_flags;
    std::function<void(const std::string &)> progress;  // one line at a time
};

// False with a sentence when the database cannot be read, the fix does not apply or a unit
// does not compile. The tree is as it was afterwards in every case.
bool diff_source(const SourceDiffArgs &a, SourceDiff *out, std::string *why);

}  // namespace graft::diff
