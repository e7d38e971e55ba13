// Whether the "before" build of a translation unit is the code that runs: each function a fix
// changes is looked up in the target (the program or shared object, as a file: /proc/PID/exe
// names a running one) and its bytes compared with the object's, outside the fields relocations
// fill and the instruction bytes the linker may rewrite with them (a GOT load relaxed to a `lea`).
// A patch built from another build would replace functions it does not know: `graft diff`
// refuses to go on ("your build does not match the running binary: function F differs").
#pragma once
#include <string>
#include <vector>

#include "diff/object_diff.hpp"

namespace graft::diff {

struct TargetCheck {
    std::string build_id;              // the target's, hex (empty if it has none)
    std::vector<std::string> differ;   // functions whose bytes differ from every copy of that name
    std::vector<std::string> missing;  // functions the target's symbol table does not have
    size_t matched = 0;
};

// Compares the pieces of `before` named in `names` (functions) with the target file at `path`.
// False with a sentence naming the file when it cannot be read as an ELF object with symbols.
bool check_target(const ObjectPieces &before, const std::vector<std::string> &names, const std::string &path,
                  TargetCheck *out, std::string *why);

}  // namespace graft::diff
