// One translation unit's contribution to a generated patch: its object, built after the fix with
// the large code model (`-mcmodel=large -fno-pic`: every reference to a symbol is a 64-bit
// absolute field, so it can point anywhere in the process), reduced to what the patch must hold.
//
// Kept: the functions the fix changed or added, and what they need that the running process does
// not have: read-only data (string literals, switch tables), the data the fix adds, functions
// the target lacks (a static function inlined into every caller there, a C++ inline function).
// Referred to in the target (the kernel's klp relocations, `.klp.rela.*`, for processes): every
// unchanged function and every writable data object the target has. Each such reference is taken
// out of the object (its relocation becomes R_X86_64_NONE, so the linker leaves the field alone)
// and returned as a PatchRef, which the generated descriptor lists for the agent; the agent
// resolves them all, as it resolves GRAFT_REF, before anything of the patch can run.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "diff/target_symbols.hpp"

namespace graft::diff {

struct PatchRef {
    std::string holder;   // the patch's symbol the field is in (its name in the patch)
    uint64_t offset = 0;  // of the 8-byte field, from holder
    std::string name;     // the target's symbol
    unsigned long sympos = 0;
    int64_t addend = 0;  // the field holds the symbol's address plus this
    bool code = false;   // the field is in code (the agent writes it through its code writer)
};

struct PatchObjectPlan {
    std::string unit;                // the unit's source base name (the target's STT_FILE)
    std::string tag;                 // makes the patch's names unique ("u0")
    std::set<std::string> keep;      // functions the fix changed or added (this object's names)
    std::set<std::string> new_data;  // data objects the fix added: the patch's own
    std::map<std::string, std::string> target_name;  // this object's name -> the target's, when they differ
};

struct PatchObject {
    std::vector<PatchRef> refs;
    std::map<std::string, std::string> renamed;  // this object's name -> the patch's (keep and holders)
    std::vector<std::string> copied;             // functions of the unit copied because the target lacks them
};

// Writes `out` from the object `in`. False with a sentence naming the symbol and the reason when
// a kept function refers to something a patch cannot reach (thread-local data, data the target
// does not have).
bool make_patch_object(const std::string &in, const std::string &out, const PatchObjectPlan &plan,
                       const TargetSymbols &target, PatchObject *result, std::string *why);

// Every defined global symbol of the object `path` becomes hidden: the patch exports only its
// descriptor, and the linker may drop what nothing refers to (--gc-sections).
bool hide_globals(const std::string &path, std::string *why);

}  // namespace graft::diff
