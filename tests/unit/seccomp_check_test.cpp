// The seccomp check of `graft attach` (src/cli/seccomp_check.cpp): filters written the way
// systemd and sandboxes write them, run on the agent's calls as the kernel would run them.
#include <linux/audit.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstddef>

#include <gtest/gtest.h>

#include "cli/seccomp_check.hpp"

using graft::cli::seccomp_action;
using graft::cli::seccomp_refusal;
using graft::cli::SeccompFilter;

namespace {

seccomp_data call(long nr, uint64_t a2 = 0) {
    seccomp_data d{};
    d.nr = static_cast<int>(nr);
    d.arch = AUDIT_ARCH_X86_64;
    d.args[2] = a2;
    return d;
}

// Kills on another architecture; `nr` gets `action`; everything else is allowed.
SeccompFilter deny(long nr, uint32_t action) {
    return {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1),
        BPF_STMT(BPF_RET | BPF_K, action),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
}

// systemd's MemoryDenyWriteExecute=: mprotect with PROT_EXEC fails with EPERM.
SeccompFilter deny_exec_mprotect() {
    return {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_mprotect, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
}

}  // namespace

TEST(UnitSeccomp, EachCallGetsItsFiltersAction) {
    const std::vector<SeccompFilter> f = {deny(SYS_membarrier, SECCOMP_RET_ERRNO | EPERM)};
    EXPECT_EQ(seccomp_action(f, call(SYS_membarrier)), SECCOMP_RET_ERRNO | EPERM);
    EXPECT_EQ(seccomp_action(f, call(SYS_read)), SECCOMP_RET_ALLOW);
    seccomp_data other = call(SYS_read);
    other.arch = AUDIT_ARCH_I386;
    EXPECT_EQ(seccomp_action(f, other), SECCOMP_RET_KILL_PROCESS);
    EXPECT_EQ(seccomp_action({}, call(SYS_membarrier)), SECCOMP_RET_ALLOW);
}

TEST(UnitSeccomp, TheMostRestrictiveFilterWins) {
    const std::vector<SeccompFilter> f = {deny(SYS_socket, SECCOMP_RET_ERRNO | EACCES),
                                          deny(SYS_socket, SECCOMP_RET_KILL_PROCESS),
                                          deny(SYS_socket, SECCOMP_RET_LOG)};
    EXPECT_EQ(seccomp_action(f, call(SYS_socket)), SECCOMP_RET_KILL_PROCESS);
    EXPECT_EQ(seccomp_action({deny(SYS_socket, SECCOMP_RET_LOG), deny(SYS_socket, SECCOMP_RET_TRAP)},
                             call(SYS_socket)),
              SECCOMP_RET_TRAP);
}

TEST(UnitSeccomp, ArgumentsAreLookedAt) {
    const std::vector<SeccompFilter> f = {deny_exec_mprotect()};
    EXPECT_EQ(seccomp_action(f, call(SYS_mprotect, PROT_READ | PROT_WRITE)), SECCOMP_RET_ALLOW);
    EXPECT_EQ(seccomp_action(f, call(SYS_mprotect, PROT_READ | PROT_EXEC)), SECCOMP_RET_ERRNO | EPERM);
    // The agent writes code through /proc/self/mem where mprotect fails with an errno: not in
    // the way, unless that is forbidden too; a filter that kills on the mprotect is.
    EXPECT_EQ(seccomp_refusal(f), "");
    EXPECT_EQ(
        seccomp_refusal({deny_exec_mprotect(), deny(SYS_pwrite64, SECCOMP_RET_ERRNO | EPERM)}),
        "its seccomp filter forbids pwrite64 (code written through /proc/self/mem), which the agent needs "
        "(the filter would fail it with Operation not permitted); its code may not be made writable, so "
        "the agent writes it through /proc/self/mem");
    EXPECT_EQ(seccomp_refusal({deny(SYS_pwrite64, SECCOMP_RET_ERRNO | EPERM)}), "");
    EXPECT_EQ(
        seccomp_refusal({deny(SYS_mprotect, SECCOMP_RET_KILL_PROCESS)}),
        "its seccomp filter forbids mprotect, which the agent needs (the filter would kill the process)");
}

TEST(UnitSeccomp, RefusalNamesTheFirstForbiddenCall) {
    EXPECT_EQ(
        seccomp_refusal({deny(SYS_membarrier, SECCOMP_RET_KILL_PROCESS)}),
        "its seccomp filter forbids membarrier, which the agent needs (the filter would kill the process)");
    EXPECT_EQ(seccomp_refusal({deny(SYS_membarrier, SECCOMP_RET_LOG)}), "");
    EXPECT_EQ(seccomp_refusal({deny(SYS_kexec_load, SECCOMP_RET_KILL_PROCESS)}), "");
}

TEST(UnitSeccomp, MalformedProgramsCountAsKilling) {
    // A jump past the end, a scratch slot out of range, and a program without a return.
    const SeccompFilter jump = {BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0),
                                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    const SeccompFilter slot = {BPF_STMT(BPF_LD | BPF_MEM, 16), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    const SeccompFilter open = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0)};
    const SeccompFilter odd = {BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2),
                               BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    for (const auto &f : {jump, slot, open, odd})
        EXPECT_EQ(seccomp_action({f}, call(SYS_read)), SECCOMP_RET_KILL_PROCESS);
}
