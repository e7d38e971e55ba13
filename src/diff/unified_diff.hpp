// The fix as a unified diff (an upstream commit, `git diff`, a debian/patches file): which files it
// changes. Applying it is `patch`'s job (source_tree.hpp); graft reads only the file headers.
#pragma once
#include <string>
#include <vector>

namespace graft::diff {

struct TouchedFile {
    std::string path;  // relative to the tree, after stripping `strip` leading components
    bool created = false, deleted = false;
};

struct FixFiles {
    int strip = 1;  // the -p level: 1 when the paths carry git's a/ and b/, else 0
    std::vector<TouchedFile> files;
};

// Reads the headers (`--- old`, `+++ new`) of every file in `text`. False with the reason when
// there is none, or a header is malformed.
bool parse_fix(const std::string &text, FixFiles *out, std::string *why);

}  // namespace graft::diff
