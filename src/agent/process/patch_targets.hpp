// The target records of a patch file (graft_patch_targets, written by `graft build --target`),
// read from the file without loading it: `graft load --all` picks the processes a patch is for
// by them. The file is untrusted bytes, read with the checked reader of elf_file.cpp.
#pragma once
#include <string>
#include <vector>

namespace graft {

struct PatchTarget {
    std::string object;    // soname or basename; empty: the main executable
    std::string build_id;  // hex
};

// The records of the patch open on `fd` (`name` names it in errors), in file order; an empty list
// if the patch records none. False, with *err naming the file and the rule it breaks, if it is
// not an x86-64 shared object or its records are malformed.
bool read_patch_targets_fd(int fd, const std::string &name, std::vector<PatchTarget> *out, std::string *err);
bool read_patch_targets(const std::string &path, std::vector<PatchTarget> *out, std::string *err);

}  // namespace graft
