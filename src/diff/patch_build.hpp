// The last stage of `graft diff`: the patch shared object. Each unit's after-fix object, built
// with the large code model, is reduced to what the patch holds (patch_object.hpp); a generated
// descriptor names the functions that replace the target's (with their symbol positions), the
// fields the agent fills with target addresses, and the target's build-id; the author's own
// files (callbacks, shadow variables, states) are compiled next to it; all of it is linked into
// one shared object that exports only the descriptor.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "diff/object_diff.hpp"
#include "diff/target_symbols.hpp"

namespace graft::diff {

struct PatchBuildUnit {
    std::string source;     // the unit's source, absolute
    std::string patch_obj;  // built after the fix with the large code model
    std::string compiler;   // as its compile command names it
    const ObjectDiff *diff = nullptr;
};

struct PatchBuildArgs {
    std::string output;                  // the patch .so
    std::string work;                    // a directory for what is generated
    std::string include_dir;             // graft's headers
    std::vector<std::string> with;       // hand-written C/C++ files linked into the patch
    std::vector<std::string> with_args;  // compiler options for them (-I...)
    const TargetSymbols *target = nullptr;
    std::function<void(const std::string &)> progress;
};

struct PatchContents {
    struct Func {
        std::string name;  // the target's
        unsigned long sympos = 0;
        std::string why;  // "changed", "new", "copied: the target has no copy"
    };
    std::vector<Func> funcs;
    size_t refs = 0;     // fields the agent fills with the target's addresses
    std::string object;  // the target as the patch names it ("" for the main program)
};

// False with a sentence naming the symbol and the reason when the fix cannot be a patch or the
// build fails; nothing is written at args.output then.
bool build_patch(const PatchBuildArgs &args, const std::vector<PatchBuildUnit> &units, PatchContents *out,
                 std::string *why);

}  // namespace graft::diff
