// The rows the signal handler walks with (frame_rules.hpp) say, at every byte of every function
// they cover, exactly what libdw says there. Rows are built the way the worker builds them (one
// function at a time, from a pc inside it) over real code: this test program and libc, whose
// functions have early returns, remembered and restored CFI states, frame-pointer frames.
#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "agent/unwind/frame_rules.hpp"

// frame_rules.cpp's two links to the rest of the agent. Single-threaded here: no reader to wait
// for, and every object is "watched" (nothing is unloaded during the test).
namespace graft {
bool objects_watched() {
    return true;
}
void synchronize_threads() {}
}  // namespace graft

namespace {

char *g_debuginfo_path = nullptr;
const Dwfl_Callbacks kCallbacks = {dwfl_linux_proc_find_elf, dwfl_standard_find_debuginfo, nullptr,
                                   &g_debuginfo_path};

struct Fn {
    uintptr_t lo, hi;
};

// Function symbols of the module containing `inside`, at most `max`.
std::vector<Fn> functions_of(Dwfl *d, uintptr_t inside, size_t max) {
    std::vector<Fn> out;
    Dwfl_Module *m = dwfl_addrmodule(d, inside);
    if (!m) return out;
    int n = dwfl_module_getsymtab(m);
    for (int i = 1; i < n && out.size() < max; i++) {
        GElf_Sym sym;
        GElf_Addr addr = 0;
        if (!dwfl_module_getsym_info(m, i, &sym, &addr, nullptr, nullptr, nullptr)) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0 || sym.st_shndx == SHN_UNDEF) continue;
        out.push_back({addr, addr + sym.st_size});
    }
    return out;
}

bool same_rule(const graft::FrameRule &a, const graft::FrameRule &b) {
    return a.kind == b.kind && a.cfa_offset == b.cfa_offset &&
           (a.kind == graft::FrameRule::kOther ||
            (a.rbp == b.rbp && (a.rbp != graft::FrameRule::kRbpAtCfa || a.rbp_offset == b.rbp_offset)));
}

}  // namespace

TEST(UnitFrameRules, RowsAgreeWithLibdwAtEveryByte) {
    Dwfl *d = dwfl_begin(&kCallbacks);
    ASSERT_NE(d, nullptr);
    ASSERT_EQ(dwfl_linux_proc_report(d, getpid()), 0);
    ASSERT_EQ(dwfl_report_end(d, nullptr, nullptr), 0);

    std::vector<Fn> fns = functions_of(d, reinterpret_cast<uintptr_t>(&same_rule), 100000);
    std::vector<Fn> libc = functions_of(d, reinterpret_cast<uintptr_t>(dlsym(RTLD_DEFAULT, "printf")), 1500);
    ASSERT_GT(fns.size(), 50u);
    ASSERT_GT(libc.size(), 500u);
    fns.insert(fns.end(), libc.begin(), libc.end());
    // Rows from a pc in the middle of each function, as from a handler's miss there.
    for (const Fn &f : fns) graft::frame_rules_note_function(d, f.lo + (f.hi - f.lo) / 2);
    graft::frame_rules_publish();
    const graft::FrameRuleSnapshot *rows = graft::frame_rules_current();
    ASSERT_NE(rows, nullptr);

    size_t bytes = 0, covered = 0, simple = 0, mismatches = 0;
    for (const Fn &f : fns) {
        for (uintptr_t pc = f.lo; pc < f.hi; pc++) {
            uintptr_t lo = 0, hi = 0;
            graft::FrameRule direct = graft::frame_rule_compute(d, pc, &lo, &hi);
            if (lo >= hi) continue;  // no CFI at this byte (padding)
            bytes++;
            graft::FrameRule row;
            if (!graft::frame_rules_lookup(rows, pc, &row)) continue;
            covered++;
            simple += row.kind != graft::FrameRule::kOther;
            if (!same_rule(direct, row)) {
                if (++mismatches <= 10)
                    ADD_FAILURE() << std::hex << "pc 0x" << pc << ": libdw kind " << int(direct.kind)
                                  << " cfa " << std::dec << direct.cfa_offset << ", row kind "
                                  << int(row.kind) << " cfa " << row.cfa_offset;
            }
        }
    }
    EXPECT_EQ(mismatches, 0u);
    // Not vacuous: the rows cover nearly all of it, and most of it with rules the handler uses.
    EXPECT_GT(covered, bytes * 9 / 10) << covered << " of " << bytes;
    EXPECT_GT(simple, covered / 2) << simple << " of " << covered;
    std::printf("%zu bytes with CFI, %zu covered by rows, %zu by rows the handler walks with\n", bytes,
                covered, simple);
    dwfl_end(d);
}
