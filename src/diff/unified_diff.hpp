// The fix as a unified diff (an upstream commit, `git diff`, a debian/patches file): which files it
// changes. Applying it is `patch`'s job (source_tree.hpp); graft reads only the file headers.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace graft::diff {

struct Hunk {
    int old_start = 0, old_len = 0, new_start = 0, new_len = 0;
    std::vector<std::pair<int, int>> context;  // (old line, new line) of its unchanged lines
};

struct TouchedFile {
    std::string path;  // relative to the tree, after stripping `strip` leading components
    bool created = false, deleted = false;
    std::vector<Hunk> hunks;
};

// How far the fix moves line `old_line` of the file (new line - old line): what __LINE__ there
// becomes. INT32_MIN when the fix changes that line itself.
int line_shift(const TouchedFile &f, int old_line);

struct FixFiles {
    int strip = 1;  // the -p level: 1 when the paths carry git's a/ and b/, else 0
    std::vector<TouchedFile> files;
};

// Reads the headers (`--- old`, `+++ new`) of every file in `text`, and its hunks' line ranges. False with
// the reason when there is none, or a header is malformed.
bool parse_fix(const std::string &text, FixFiles *out, std::string *why);

}  // namespace graft::diff
