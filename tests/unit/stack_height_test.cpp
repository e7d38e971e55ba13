// Stack heights derived from code (src/arch/x86_64/stack_height.cpp): hand-assembled functions,
// the CFA's distance from rsp and rbp at chosen instructions, and the places with no certain
// answer. The "function" is a byte array: the analysis only reads it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "arch/x86_64/stack_height.hpp"
#include "code_bytes.hpp"

namespace {

using graft::arch::frame_height_at;
using graft::arch::FrameHeight;

// push %rbp; mov %rsp,%rbp; push %rbx; sub $0x28,%rsp; call .+0; mov -8(%rbp),%rbx; leave; ret
const std::vector<unsigned char> kFramePointer = {
    0x55,                          // +0  push %rbp
    0x48, 0x89, 0xe5,              // +1  mov %rsp,%rbp
    0x53,                          // +4  push %rbx
    0x48, 0x83, 0xec, 0x28,        // +5  sub $0x28,%rsp
    0xe8, 0x00, 0x00, 0x00, 0x00,  // +9  call +14
    0x48, 0x8b, 0x5d, 0xf8,        // +14 mov -8(%rbp),%rbx
    0xc9,                          // +18 leave
    0xc3,                          // +19 ret
};

}  // namespace

TEST(UnitStackHeight, FramePointerPrologueAndBody) {
    CodeBytes c = code_of(kFramePointer);
    FrameHeight h;
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(0), &h));
    EXPECT_EQ(h.cfa_minus_sp, 8);
    EXPECT_FALSE(h.bp_known);
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(1), &h));
    EXPECT_EQ(h.cfa_minus_sp, 16);
    // Inside the call (a return address - 1 lies there): 8 + 8 + 8 + 0x28, rbp = CFA - 16.
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(13), &h));
    EXPECT_EQ(h.cfa_minus_sp, 64);
    ASSERT_TRUE(h.bp_known);
    EXPECT_EQ(h.cfa_minus_bp, 16);
    // After leave: only the return address is left.
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(19), &h));
    EXPECT_EQ(h.cfa_minus_sp, 8);
    EXPECT_FALSE(h.bp_known);
}

// A stack realigned with `and $-16,%rsp` has no height until rsp is restored from rbp.
TEST(UnitStackHeight, RealignedStackHasNoHeightUntilRestoredFromRbp) {
    CodeBytes c = code_of({
        0x55,                          // +0  push %rbp
        0x48, 0x89, 0xe5,              // +1  mov %rsp,%rbp
        0x48, 0x83, 0xe4, 0xf0,        // +4  and $-16,%rsp
        0xe8, 0x00, 0x00, 0x00, 0x00,  // +8  call +13
        0x48, 0x89, 0xec,              // +13 mov %rbp,%rsp
        0x5d,                          // +16 pop %rbp
        0xc3,                          // +17 ret
    });
    FrameHeight h;
    EXPECT_FALSE(frame_height_at(c.at(0), c.size, c.at(10), &h));
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(16), &h));
    EXPECT_EQ(h.cfa_minus_sp, 16);
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(17), &h));
    EXPECT_EQ(h.cfa_minus_sp, 8);
}

// Two paths reaching one instruction with different heights: no answer there, an answer before.
TEST(UnitStackHeight, PathsThatDisagreeGiveNoAnswer) {
    CodeBytes c = code_of({
        0x85, 0xff,        // +0 test %edi,%edi
        0x74, 0x01,        // +2 je +5
        0x50,              // +4 push %rax
        0xe8, 0, 0, 0, 0,  // +5 call +10   (reached with 8 and with 16)
        0xc3,              // +10 ret
    });
    FrameHeight h;
    ASSERT_TRUE(frame_height_at(c.at(0), c.size, c.at(4), &h));
    EXPECT_EQ(h.cfa_minus_sp, 8);
    EXPECT_FALSE(frame_height_at(c.at(0), c.size, c.at(7), &h));
}

// Code the walk from the entry never reaches has no height, nor has a pc outside the function.
TEST(UnitStackHeight, UnreachedCodeAndForeignPcsGiveNoAnswer) {
    CodeBytes c = code_of({
        0xc3,        // +0 ret
        0x55,        // +1 push %rbp (never reached)
        0x5d, 0xc3,  // +2 pop %rbp; ret
    });
    FrameHeight h;
    EXPECT_FALSE(frame_height_at(c.at(0), c.size, c.at(1), &h));
    EXPECT_FALSE(frame_height_at(c.at(0), c.size, c.at(8), &h));
}
