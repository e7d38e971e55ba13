// The registers of the code a signal interrupted, from the handler's ucontext (x86-64).
#pragma once
#include <signal.h>
#include <ucontext.h>

#include <cstdint>

namespace graft::arch {

struct SignalRegs {
    uintptr_t pc, sp, fp;
};

inline SignalRegs signal_regs(const void *ucontext) {
    const auto *ctx = static_cast<const ucontext_t *>(ucontext);
    return {static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RIP]),
            static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RSP]),
            static_cast<uintptr_t>(ctx->uc_mcontext.gregs[REG_RBP])};
}

}  // namespace graft::arch
