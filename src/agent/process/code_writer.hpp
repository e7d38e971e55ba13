// Writing into the process's own executable pages.
//
// All pages are made writable (keeping them executable: threads may be running there; a RW-only
// fallback would crash them) before the first byte changes, so a refusal changes nothing. Each
// write is one naturally aligned store of 1, 2 or 8 bytes, or a byte copy into code no thread can
// reach yet. The caller orders the batches and the core-serialising barriers.
//
// A process may forbid pages that are writable and executable (prctl(PR_SET_MDWE), SELinux
// without execmod): then the bytes go through /proc/self/mem, which the kernel writes without
// changing any mapping (FOLL_FORCE). Such a write is a copy, atomic for one byte only: a 2- or
// 8-byte store is accepted there only when it changes one byte (a gate's merge); graft routes
// functions through ordinary entries in such a process (code_pages_locked), whose every write
// is one byte, code no thread can reach, or data.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace graft {

struct CodeWrite {
    uintptr_t addr;
    uint8_t len;  // 1, 2, 8: one atomic store; other: plain copy (unreachable code only)
    uint8_t bytes[16];
};

bool write_code(const std::vector<CodeWrite> &writes, std::string *why);

// Makes [p, p+len), mapped read-write by the caller and filled with new code no thread can reach
// yet, readable and executable. Where written memory may not become executable (MDWE, a seccomp
// filter), the range is mapped executable anew and the same bytes written through
// /proc/self/mem. On failure the range's contents are unspecified: the caller unmaps it.
bool make_executable(void *p, size_t len, std::string *why);

// Whether code pages may not be made writable here: the process turned MDWE on, or a write
// found its pages refused (sticky). Any thread.
bool code_pages_locked();

// Set when the code is no longer as graft's records say: a page that could not be made
// read-only again after a write (it stays writable and executable), or an undo of routing
// writes that failed. The core then refuses all further patching (core_refusing). Written and
// read under the core mutex, which every caller of write_code holds.
void code_writer_mark_broken(const std::string &why);
bool code_writer_broken(std::string *why);

}  // namespace graft
