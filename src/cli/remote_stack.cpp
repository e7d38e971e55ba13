#include "cli/remote_stack.hpp"

#include <elfutils/libdwfl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "agent/unwind/cfi_rule.hpp"
#include "cli/target_root.hpp"

namespace graft::cli {
namespace {

// The process whose objects the callback below opens (one RemoteStack is built at a time per
// thread; libdw opens every object while it is built).
thread_local pid_t t_pid = 0;

// An object named by its path in the process's maps is opened as the process sees it (inside a
// container's root: the same path here may be another file, with other CFI); libdw's own callback
// serves the rest ("(deleted)" files, the vDSO).
int find_elf_in_target(Dwfl_Module *mod, void **userdata, const char *name, Dwarf_Addr base, char **file_name,
                       Elf **elfp) {
    if (t_pid > 0 && name && name[0] == '/' && !std::strstr(name, " (deleted)")) {
        const int fd = open_in_target(t_pid, name);
        if (fd >= 0) {
            *file_name = strdup(name);
            return fd;
        }
    }
    return dwfl_linux_proc_find_elf(mod, userdata, name, base, file_name, elfp);
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = find_elf_in_target,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = nullptr,
};

}  // namespace

RemoteStack::RemoteStack(pid_t pid, int mem_fd) : mem_fd_(mem_fd) {
    dwfl_ = dwfl_begin(&kCallbacks);
    if (!dwfl_) return;
    t_pid = pid;
    // Reads /proc/PID/maps only: no thread is stopped or attached to by libdw.
    if (dwfl_linux_proc_report(dwfl_, pid) != 0 || dwfl_report_end(dwfl_, nullptr, nullptr) != 0) {
        dwfl_end(dwfl_);
        dwfl_ = nullptr;
        return;
    }
    // libdw opens each object and reads its CFI on the first lookup there: milliseconds that a
    // walk made while a thread is stopped must not spend. Done here, before any thread stops.
    dwfl_getmodules(
        dwfl_,
        [](Dwfl_Module *m, void **, const char *, Dwarf_Addr, void *) {
            Dwarf_Addr bias = 0;
            (void)dwfl_module_eh_cfi(m, &bias);
            return static_cast<int>(DWARF_CB_OK);
        },
        nullptr, 0);
}

RemoteStack::~RemoteStack() {
    if (dwfl_) dwfl_end(dwfl_);
}

std::vector<uint64_t> RemoteStack::walk(uint64_t pc, uint64_t sp, uint64_t bp, size_t max) const {
    std::vector<uint64_t> pcs;
    bool bp_known = true;
    auto read8 = [&](uint64_t at, uint64_t *v) {
        return pread(mem_fd_, v, sizeof *v, static_cast<off_t>(at)) == static_cast<ssize_t>(sizeof *v);
    };
    while (pcs.size() < max && pc) {
        pcs.push_back(pc);
        if (!dwfl_) break;
        // A return address is the instruction after the call: its row may be the next
        // function's, so the call's own (pc - 1) is looked up; the innermost pc is exact.
        uintptr_t lo = 0, hi = 0;
        const FrameRule r = frame_rule_compute(dwfl_, pcs.size() == 1 ? pc : pc - 1, &lo, &hi);
        uintptr_t cfa = 0;
        if (!frame_cfa(r, sp, bp, bp_known, &cfa)) break;  // the root, or a frame the rules cannot climb
        // A stack grows up towards the callers: anything else is garbage.
        uint64_t ra = 0, caller_bp = bp;
        if (cfa <= sp || !read8(cfa - 8, &ra)) break;
        if (r.rbp == FrameRule::kRbpAtCfa)
            bp_known = read8(cfa + static_cast<uint64_t>(static_cast<int64_t>(r.rbp_offset)), &caller_bp);
        else if (r.rbp == FrameRule::kRbpUnknown)
            bp_known = false;
        sp = cfa, bp = caller_bp, pc = ra;
    }
    return pcs;
}

}  // namespace graft::cli
