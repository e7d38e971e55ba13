// The patch file, opened once: the bytes that are checked are the bytes that are loaded.
//
// A path names a file only at one instant: a file replaced, truncated or rewritten between a
// check by path and dlopen() by path would run unchecked, or map into SIGBUS. So the agent opens
// the file once (absolute path, O_NOFOLLOW), checks who owns it, copies it into a sealed memfd
// (nothing can change the copy afterwards), checks the copy and dlopen()s the copy through
// /proc/self/fd. docs/design.md, "Security", says why each rule exists.
#pragma once
#include <memory>
#include <string>

#include "agent/process/symbols.hpp"

namespace graft {

struct PatchImage {
    // The sealed copy (or, where memfds are not available, the file itself), open while the patch
    // is loaded: its /proc/self/fd name is the loaded object's name, and must keep naming it.
    int fd = -1;
    std::string dl_path;                     // "/proc/self/fd/N", for dlopen
    std::shared_ptr<const SymbolFile> syms;  // of the same bytes: sizes of the new functions
    bool text_relocations = false;           // DT_TEXTREL: dlopen writes its code to relocate it
};

// Opens and checks the patch file at `path`. On failure returns an errno value, *why names the
// file and the rule it broke, and nothing stays open. On success the caller owns out->fd.
int open_patch_file(const std::string &path, PatchImage *out, std::string *why);

// Closes the image's descriptor, after dlclose() of what was loaded from it.
void close_patch_image(int fd);

}  // namespace graft
