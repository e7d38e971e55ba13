// Decoding of patchable entries and the bytes graft writes there.
#include <gtest/gtest.h>

#include <cstring>

#include "arch/arch.hpp"

namespace {
struct alignas(64) Code {
    unsigned char b[64];
};

uintptr_t make(Code &c, const std::vector<unsigned char> &entry) {
    std::memset(c.b, 0xcc, sizeof c.b);
    std::memset(c.b + 16, 0x90, 14);  // prefix at a 16-byte boundary
    std::memcpy(c.b + 30, entry.data(), entry.size());
    return reinterpret_cast<uintptr_t>(c.b + 30);
}
}  // namespace

TEST(UnitEntry, ClangTwoByteNop) {
    Code c;
    uintptr_t f = make(c, {0x66, 0x90, 0xc3});
    graft::arch::EntryLayout e;
    std::string why;
    ASSERT_TRUE(graft::arch::decode_entry(f, &e, &why)) << why;
    EXPECT_EQ(e.gate, f);
    EXPECT_EQ(e.body, f + 2);
    EXPECT_EQ(e.slot, f - 14);
    EXPECT_FALSE(e.single_byte_nops);
    EXPECT_FALSE(e.gate_open);
    // jmp rel8 from gate+2 back to f-6: -8
    EXPECT_EQ(graft::arch::gate_open_word(e), 0xf8eb);
    EXPECT_EQ(graft::arch::gate_closed_word(), 0x9066);
}

TEST(UnitEntry, GccSingleNopsAreReported) {
    Code c;
    uintptr_t f = make(c, {0x90, 0x90, 0xc3});
    graft::arch::EntryLayout e;
    std::string why;
    ASSERT_TRUE(graft::arch::decode_entry(f, &e, &why)) << why;
    EXPECT_TRUE(e.single_byte_nops);
}

TEST(UnitEntry, Endbr64GateFollowsIt) {
    Code c;
    uintptr_t f = make(c, {0xf3, 0x0f, 0x1e, 0xfa, 0x66, 0x90, 0xc3});
    graft::arch::EntryLayout e;
    std::string why;
    ASSERT_TRUE(graft::arch::decode_entry(f, &e, &why)) << why;
    EXPECT_EQ(e.gate, f + 4);
    EXPECT_EQ(graft::arch::gate_open_word(e), 0xf4eb);  // from f+6 back to f-6: -12
}

TEST(UnitEntry, NoPaddingIsRefused) {
    Code c;
    uintptr_t f = make(c, {0x55, 0x48, 0x89, 0xe5});
    graft::arch::EntryLayout e;
    std::string why;
    EXPECT_FALSE(graft::arch::decode_entry(f, &e, &why));
    EXPECT_NE(why.find("no patchable entry"), std::string::npos) << why;
    std::memset(c.b + 16, 0x55, 14);
    f = reinterpret_cast<uintptr_t>(c.b + 30);
    c.b[30] = 0x66;
    c.b[31] = 0x90;
    EXPECT_FALSE(graft::arch::decode_entry(f, &e, &why));
}

TEST(UnitEntry, MisalignedEntryIsRefused) {
    Code c;
    std::memset(c.b, 0x90, sizeof c.b);
    uintptr_t f = reinterpret_cast<uintptr_t>(c.b + 31);
    c.b[31] = 0x66;
    c.b[32] = 0x90;
    graft::arch::EntryLayout e;
    std::string why;
    EXPECT_FALSE(graft::arch::decode_entry(f, &e, &why));
    EXPECT_NE(why.find("aligned"), std::string::npos) << why;
}

// The jump layout's merge (object_events.cpp): exactly five 1-byte nops, never the gate layout's
// longer run of padding; the one nop written in their place.
TEST(UnitEntry, JumpLayoutNopRunIsExactlyFive) {
    const unsigned char five[] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x48, 0x8d, 0x47, 0x01, 0xc3};
    const unsigned char padding[16] = {0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
                                       0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x66, 0x90};
    const unsigned char four[] = {0x90, 0x90, 0x90, 0x90, 0xc3, 0x00};
    EXPECT_TRUE(graft::arch::is_single_nop_run(five, 5));
    EXPECT_FALSE(graft::arch::is_single_nop_run(padding, 5));
    EXPECT_FALSE(graft::arch::is_single_nop_run(four, 5));
    unsigned char out[5];
    graft::arch::nop5_bytes(out);
    const unsigned char nop5[] = {0x0f, 0x1f, 0x44, 0x00, 0x00};
    EXPECT_EQ(std::memcmp(out, nop5, 5), 0);
}
