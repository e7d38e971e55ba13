// Writing into the process's own executable pages.
//
// All pages are made writable (keeping them executable: threads may be running there; a RW-only
// fallback would crash them) before the first byte changes, so a refusal changes nothing. Each
// write is one naturally aligned store of 1, 2 or 8 bytes, or a byte copy into code no thread can
// reach yet. The caller orders the batches and the core-serialising barriers.
#pragma once
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

// Set when the code is no longer as graft's records say: a page that could not be made
// read-only again after a write (it stays writable and executable), or an undo of routing
// writes that failed. The core then refuses all further patching (core_refusing). Written and
// read under the core mutex, which every caller of write_code holds.
void code_writer_mark_broken(const std::string &why);
bool code_writer_broken(std::string *why);

}  // namespace graft
