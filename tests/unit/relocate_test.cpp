// The relocation of an ordinary function's first instructions (src/arch/x86_64/relocate.cpp): the
// bytes graft would put in the block for hand-assembled entries, and the refusals. The "function"
// is a byte array: planning only reads it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "arch/x86_64/relocate.hpp"
#include "code_bytes.hpp"

namespace {

using graft::arch::EntryRewrite;
using graft::arch::kBlockCopyOffset;
using graft::arch::plan_entry_rewrite;

int32_t reloc_rel32_at(const unsigned char *p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

}  // namespace

// mov 0x10(%rip),%eax; ret: the copy reads the same address from the block.
TEST(UnitRelocate, RipRelativeOperandIsReEncoded) {
    CodeBytes f = code_of({0x8b, 0x05, 0x10, 0x00, 0x00, 0x00, 0xc3});
    EntryRewrite r;
    std::string why;
    ASSERT_TRUE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why)) << why;
    EXPECT_EQ(r.at, f.at());
    EXPECT_EQ(r.displaced, 6);
    const unsigned char *copy = r.block + kBlockCopyOffset;
    EXPECT_EQ(copy[0], 0x8b);
    EXPECT_EQ(copy[1], 0x05);
    uintptr_t target = f.block() + kBlockCopyOffset + 6 + static_cast<intptr_t>(reloc_rel32_at(copy + 2));
    EXPECT_EQ(target, f.at() + 6 + 0x10);
    // Then the jump back to the first instruction not moved.
    EXPECT_EQ(copy[6], 0xe9);
    EXPECT_EQ(f.block() + kBlockCopyOffset + 11 + static_cast<intptr_t>(reloc_rel32_at(copy + 7)),
              f.at() + 6);
    // The block's head: jmp *slot(%rip), the slot in the data page beside the block.
    EXPECT_EQ(r.block[0], 0xff);
    EXPECT_EQ(r.block[1], 0x25);
    int32_t disp;
    std::memcpy(&disp, r.block + 2, 4);
    EXPECT_EQ(f.block() + 6 + disp, f.block() + graft::arch::kBlockSlotDistance);
}

// endbr64; push %rbp; mov %rsp,%rbp; sub $0x10,%rsp: the jump goes after endbr64 and covers
// push + mov + sub (8 bytes of whole instructions).
TEST(UnitRelocate, EndbrIsKeptAndWholeInstructionsMove) {
    CodeBytes f = code_of(
        {0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x10, 0x31, 0xc0, 0xc9, 0xc3});
    EntryRewrite r;
    std::string why;
    ASSERT_TRUE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why)) << why;
    EXPECT_EQ(r.at, f.at() + 4);
    EXPECT_EQ(r.displaced, 8);
    EXPECT_EQ(std::memcmp(r.block + kBlockCopyOffset, f.b + 4, 8), 0);
    EXPECT_EQ(std::memcmp(r.original, f.b + 4, 8), 0);
    // Three instructions: threads can stand inside the changing bytes.
    EXPECT_FALSE(r.one_instruction);
}

// The jump layout (`graft flags target --entry jump`) once graft merged its nops: one 5-byte nop,
// one instruction (its rewrite need not wait for threads); as gcc emits it, five 1-byte nops.
TEST(UnitRelocate, JumpLayoutEntryIsOneInstructionOnceMerged) {
    CodeBytes merged = code_of({0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x8d, 0x47, 0x01, 0xc3});
    EntryRewrite r;
    std::string why;
    ASSERT_TRUE(plan_entry_rewrite(merged.at(), merged.size, merged.block(), &r, &why)) << why;
    EXPECT_EQ(r.displaced, 5);
    EXPECT_TRUE(r.one_instruction);
    CodeBytes five = code_of({0x90, 0x90, 0x90, 0x90, 0x90, 0x48, 0x8d, 0x47, 0x01, 0xc3});
    ASSERT_TRUE(plan_entry_rewrite(five.at(), five.size, five.block(), &r, &why)) << why;
    EXPECT_EQ(r.displaced, 5);
    EXPECT_FALSE(r.one_instruction);
    // A first instruction longer than the jump (lea 0x10(%rip),%rax: 7 bytes) is one too.
    CodeBytes lea = code_of({0x48, 0x8d, 0x05, 0x10, 0x00, 0x00, 0x00, 0xc3});
    ASSERT_TRUE(plan_entry_rewrite(lea.at(), lea.size, lea.block(), &r, &why)) << why;
    EXPECT_EQ(r.displaced, 7);
    EXPECT_TRUE(r.one_instruction);
}

// je +0x20 as the first instruction: the copy holds the rel32 form to the same target.
TEST(UnitRelocate, ShortConditionalBranchBecomesRel32) {
    std::vector<unsigned char> code = {0x74, 0x20, 0x31, 0xc0, 0x31, 0xc0, 0xc3};
    code.resize(0x40, 0x90);
    code.push_back(0xc3);
    CodeBytes f = code_of(code);
    EntryRewrite r;
    std::string why;
    ASSERT_TRUE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why)) << why;
    const unsigned char *copy = r.block + kBlockCopyOffset;
    EXPECT_EQ(copy[0], 0x0f);
    EXPECT_EQ(copy[1], 0x84);
    EXPECT_EQ(f.block() + kBlockCopyOffset + 6 + static_cast<intptr_t>(reloc_rel32_at(copy + 2)),
              f.at() + 2 + 0x20);
}

TEST(UnitRelocate, TooShortIsRefused) {
    CodeBytes f = code_of({0x31, 0xc0, 0xc3});
    EntryRewrite r;
    std::string why;
    EXPECT_FALSE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why));
    EXPECT_EQ(why, "it is shorter than the 5-byte jump graft writes at its entry (3 bytes)");
}

// test %edi,%edi; je out; sub $1,%edi; jmp <entry>; out: mov %edi,%eax; ret
TEST(UnitRelocate, LoopBackToTheEntryIsRefused) {
    CodeBytes f = code_of({0x85, 0xff, 0x74, 0x05, 0x83, 0xef, 0x01, 0xeb, 0xf7, 0x89, 0xf8, 0xc3});
    EntryRewrite r;
    std::string why;
    EXPECT_FALSE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why));
    EXPECT_NE(why.find("jumps back to its entry"), std::string::npos) << why;
}

// xor %eax,%eax; <+2> add $1,%eax; cmp $5,%eax; jne <+2>; ret: a branch into the moved bytes.
TEST(UnitRelocate, BranchIntoTheDisplacedBytesIsRefused) {
    CodeBytes f = code_of({0x31, 0xc0, 0x83, 0xc0, 0x01, 0x83, 0xf8, 0x05, 0x75, 0xf8, 0xc3});
    EntryRewrite r;
    std::string why;
    EXPECT_FALSE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why));
    EXPECT_NE(why.find("lands inside the 5 bytes the jump at its entry would cover"), std::string::npos)
        << why;
}

TEST(UnitRelocate, CallInTheFirstBytesIsRefused) {
    CodeBytes f = code_of({0xe8, 0x00, 0x00, 0x00, 0x00, 0xc3});
    EntryRewrite r;
    std::string why;
    EXPECT_FALSE(plan_entry_rewrite(f.at(), f.size, f.block(), &r, &why));
    EXPECT_NE(why.find("a call in its first 5 bytes cannot be moved"), std::string::npos) << why;
}

TEST(UnitRelocate, BreakpointOrJumpAtTheEntryIsRefused) {
    EntryRewrite r;
    std::string why;
    CodeBytes a = code_of({0xcc, 0x31, 0xc0, 0x31, 0xc0, 0xc3});
    EXPECT_FALSE(plan_entry_rewrite(a.at(), a.size, a.block(), &r, &why));
    EXPECT_NE(why.find("holds a breakpoint"), std::string::npos) << why;
    CodeBytes b = code_of({0xe9, 0x10, 0x00, 0x00, 0x00, 0xc3});
    EXPECT_FALSE(plan_entry_rewrite(b.at(), b.size, b.block(), &r, &why));
    EXPECT_NE(why.find("already a 5-byte jump"), std::string::npos) << why;
}
