// The byte patterns `graft attach` looks for in another process's C library, which comes from
// that process's root and is not trusted: every shape other than the expected one is rejected,
// and no match reads past the bytes given.
#include <gtest/gtest.h>
#include <sys/syscall.h>

#include <algorithm>
#include <vector>

#include "arch/remote.hpp"

using graft::arch::blocked_syscall_nr;
using graft::arch::errno_tpoff_slot;
using graft::arch::find_sigreturn_stub;
using graft::arch::syscall_restarts_after_stop;

namespace {
// mov 0x1000(%rip),%rax; add %fs:0,%rax; ret
const std::vector<uint8_t> kErrnoLocation = {0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, 0x64, 0x48,
                                             0x03, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, 0xc3};
}  // namespace

TEST(UnitRemoteCall, ErrnoSlotOfGlibcsErrnoLocation) {
    EXPECT_EQ(errno_tpoff_slot(kErrnoLocation.data(), kErrnoLocation.size()), 7 + 0x1000);
    std::vector<uint8_t> endbr = {0xf3, 0x0f, 0x1e, 0xfa};
    endbr.insert(endbr.end(), kErrnoLocation.begin(), kErrnoLocation.end());
    EXPECT_EQ(errno_tpoff_slot(endbr.data(), endbr.size()), 4 + 7 + 0x1000);
    std::vector<uint8_t> negative = kErrnoLocation;
    negative[3] = 0xf0, negative[4] = negative[5] = negative[6] = 0xff;  // disp32 = -16
    EXPECT_EQ(errno_tpoff_slot(negative.data(), negative.size()), 7 - 16);
}

TEST(UnitRemoteCall, OtherShapesOfErrnoLocationAreRejected) {
    for (size_t n = 0; n < kErrnoLocation.size(); n++)
        EXPECT_EQ(errno_tpoff_slot(kErrnoLocation.data(), n), -1) << "truncated to " << n << " bytes";
    for (size_t i = 0; i < kErrnoLocation.size(); i++) {
        if (i >= 3 && i < 7) continue;  // the displacement may be anything
        std::vector<uint8_t> bad = kErrnoLocation;
        bad[i] ^= 0x01;
        EXPECT_EQ(errno_tpoff_slot(bad.data(), bad.size()), -1) << "byte " << i << " changed";
    }
}

TEST(UnitRemoteCall, SigreturnStub) {
    std::vector<uint8_t> code(64, 0x90);
    const uint8_t stub[] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
    EXPECT_EQ(find_sigreturn_stub(code.data(), code.size()), -1);
    std::copy(std::begin(stub), std::end(stub), code.end() - sizeof stub);
    EXPECT_EQ(find_sigreturn_stub(code.data(), code.size()), static_cast<long>(code.size() - sizeof stub));
    EXPECT_EQ(find_sigreturn_stub(code.data(), code.size() - 1), -1);  // cut short: no match
    EXPECT_EQ(find_sigreturn_stub(code.data(), 0), -1);
}

TEST(UnitRemoteCall, WhichBlockedThreadsMayBeBorrowed) {
    EXPECT_EQ(blocked_syscall_nr("0 0x3 0x7ffd 0x1 0 0 0 0x7ffc 0x7f12\n"), 0);
    EXPECT_EQ(blocked_syscall_nr("232 0x4 0x7ffd 0x1 0xffffffff 0 0 0x7ffc 0x7f12\n"), 232);
    EXPECT_EQ(blocked_syscall_nr("running\n"), -1);
    EXPECT_EQ(blocked_syscall_nr("-1 0x7ffc 0x7f12\n"), -1);
    EXPECT_EQ(blocked_syscall_nr(""), -1);
    for (long nr :
         {SYS_read, SYS_futex, SYS_nanosleep, SYS_clock_nanosleep, SYS_poll, SYS_accept4, SYS_wait4})
        EXPECT_TRUE(syscall_restarts_after_stop(nr)) << nr;
    for (long nr : {SYS_epoll_wait, SYS_epoll_pwait, SYS_semop, SYS_semtimedop, SYS_rt_sigtimedwait,
                    SYS_io_getevents, SYS_connect})
        EXPECT_FALSE(syscall_restarts_after_stop(nr)) << nr;
}
