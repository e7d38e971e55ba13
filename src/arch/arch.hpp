// The only platform interface the agent includes: entry bytes, the trampoline's stubs, the
// registers a signal handler sees, barriers. Whatever knows an opcode, a register name or a byte
// offset of the entry lives under src/arch/<architecture>/.
#pragma once
#include <cstdint>

#if defined(__x86_64__)
#include "arch/x86_64/entry.hpp"
#include "arch/x86_64/selector_layout.h"
#include "arch/x86_64/signal_regs.hpp"
#else
#error "graft supports x86-64 only (docs/limitations.md)"
#endif

extern "C" {
// trampoline.S: the stub array (one stub per routed function) and the end of the shared
// trampoline code after it; hidden, so that no other object can name them.
extern char graft_stubs_begin[], graft_tramp_common_end[];
}

namespace graft::arch {

constexpr uint32_t kStubCount = GRAFT_STUB_COUNT;

// The address of stub `index` of trampoline.S's array.
inline uintptr_t stub_address(uint32_t index) {
    return reinterpret_cast<uintptr_t>(graft_stubs_begin) + uintptr_t{GRAFT_STUB_SIZE} * index;
}

// Whether `pc` is inside the stubs or the shared trampoline code after them.
inline bool in_trampoline(uintptr_t pc) {
    auto p = reinterpret_cast<const char *>(pc);
    return p >= graft_stubs_begin && p < graft_tramp_common_end;
}

}  // namespace graft::arch
