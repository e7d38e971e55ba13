// The ELF reader of the agent (src/agent/process/elf_file.cpp) on hostile bytes: every input is a patch
// file the agent checks and reads (describe_fd, check_loadable_fd, symbols_of_fd, in the order
// the agent uses them; visit_symbols, as `graft attach` reads a C library; and read_patch_targets_fd, as
// `graft load --all` reads a patch), and an object whose CFI libdw reads for the transition's stack checks
// (frame_rule_compute, src/agent/unwind/frame_rules.cpp), and a symbols file named with `graft load
// --symbols` compared with an object (same_code_and_data, src/agent/process/user_symbols.cpp: here the input
// against itself and against its first half). None may fault, hang, or allocate without bound; the input is
// held in a memfd, as the agent holds a patch file.
#include <elfutils/libdwfl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "agent/process/elf_file.hpp"
#include "agent/process/patch_targets.hpp"
#include "agent/process/symbols.hpp"
#include "agent/process/user_symbols.hpp"
#include "agent/unwind/frame_rules.hpp"

// frame_rules.cpp publishes rows for the agent's threads; nothing is published here.
namespace graft {
bool objects_watched() {
    return false;
}
void synchronize_threads() {}
}  // namespace graft

namespace {

int memfd_with(const uint8_t *data, size_t size) {
    int fd = memfd_create("elf_fuzz", MFD_CLOEXEC);
    if (fd < 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0) abort();
        done += static_cast<size_t>(n);
    }
    return fd;
}

char *g_debuginfo_path = nullptr;
// Offline: the object alone, and no separate debug information looked up anywhere.
int no_debuginfo(Dwfl_Module *, void **, const char *, Dwarf_Addr, const char *, const char *, GElf_Word,
                 char **) {
    return -1;
}
const Dwfl_Callbacks kOffline = {dwfl_build_id_find_elf, no_debuginfo, dwfl_offline_section_address,
                                 &g_debuginfo_path};

// The agent's CFI path: libdw parses the object's .eh_frame / .debug_frame and the worker turns
// the rows at function entries into frame rules.
void feed_cfi(int fd) {
    int own = dup(fd);  // libdwfl closes the descriptor it is given
    if (own < 0) return;
    Dwfl *dwfl = dwfl_begin(&kOffline);
    if (!dwfl) {
        close(own);
        return;
    }
    Dwfl_Module *m = dwfl_report_offline(dwfl, "fuzz", "fuzz.so", own);
    if (m && dwfl_report_end(dwfl, nullptr, nullptr) == 0) {
        int n = dwfl_module_getsymtab(m);
        for (int i = 0, seen = 0; i < n && seen < 32; i++) {
            GElf_Sym sym;
            GElf_Addr addr = 0;
            if (!dwfl_module_getsym_info(m, i, &sym, &addr, nullptr, nullptr, nullptr)) continue;
            if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || addr == 0) continue;
            seen++;
            uintptr_t lo = 0, hi = 0;
            (void)graft::frame_rule_compute(dwfl, addr, &lo, &hi);
            if (sym.st_size > 1) (void)graft::frame_rule_compute(dwfl, addr + sym.st_size / 2, &lo, &hi);
        }
    }
    dwfl_end(dwfl);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_with(data, size);
    const std::string name = "fuzz.so";
    std::string err;
    graft::SymbolFile facts;
    bool described = graft::describe_fd(fd, name, &facts, &err);
    // Every refusal is a sentence naming the file.
    if (!described && err.find("'fuzz.so'") == std::string::npos) abort();
    err.clear();
    (void)graft::check_loadable_fd(fd, name, "graft_patch_descriptor", &err);
    err.clear();
    // What `graft attach` reads of a process's C library: the checked headers, then every symbol
    // visited once (its names are kept).
    err.clear();
    try {
        graft::ElfFile f;
        graft::SymbolFile layout;
        size_t kept = 0;
        if (graft::open_elf(fd, name, true, &f, &err) && graft::read_elf(f, name, &layout, false, &err))
            (void)graft::visit_symbols(
                f, [&](const char *nm, uint64_t, uint64_t, bool) { kept += std::string(nm).size(); }, &err);
    } catch (const std::bad_alloc &) {
    }
    err.clear();
    auto syms = graft::symbols_of_fd(fd, name, &err);
    if (syms) {
        // What the agent does with a table: look names and addresses up.
        for (const auto &s : syms->syms) (void)syms->by_name.count(s.name);
    }
    // What `graft load --all` reads from a patch without loading it.
    err.clear();
    std::vector<graft::PatchTarget> targets;
    if (!graft::read_patch_targets_fd(fd, name, &targets, &err) && err.find("'fuzz.so'") == std::string::npos)
        abort();
    // `graft load --symbols`: the file against itself and against its own first half (another
    // "build"); whatever the verdict, it comes with a phrase.
    std::string detail;
    (void)graft::same_code_and_data(fd, name, fd, name, &detail);
    if (detail.empty()) abort();
    int half = memfd_with(data, size / 2);
    detail.clear();
    (void)graft::same_code_and_data(fd, name, half, "half.so", &detail);
    if (detail.empty()) abort();
    close(half);
    feed_cfi(fd);
    close(fd);
    return 0;
}
