// Symbol resolution with the kernel's rules (klp_find_object_symbol) on a real program.
#include <gtest/gtest.h>

#include "agent/process/symbols.hpp"

using graft::LoadedObject;
using graft::Resolved;

namespace {
LoadedObject unit_prog() {
    LoadedObject o;
    o.name = "main";
    o.path = std::string(GRAFT_TEST_PROGS) + "/unit_syms";
    o.is_main = true;
    return o;
}
}  // namespace

TEST(UnitObjects, UniqueName) {
    Resolved r;
    std::string err;
    ASSERT_TRUE(graft::resolve_symbol(unit_prog(), "global_fn", 0, true, &r, &err)) << err;
    EXPECT_NE(r.addr, 0u);
    EXPECT_GT(r.size, 0u);
}

TEST(UnitObjects, AmbiguousNameNeedsSympos) {
    Resolved r1, r2, r;
    std::string err;
    EXPECT_FALSE(graft::resolve_symbol(unit_prog(), "helper", 0, true, &r, &err));
    EXPECT_EQ(err, "unresolvable ambiguity for symbol 'helper' in object 'main'");
    ASSERT_TRUE(graft::resolve_symbol(unit_prog(), "helper", 1, true, &r1, &err)) << err;
    ASSERT_TRUE(graft::resolve_symbol(unit_prog(), "helper", 2, true, &r2, &err)) << err;
    EXPECT_NE(r1.addr, r2.addr);
    EXPECT_FALSE(graft::resolve_symbol(unit_prog(), "helper", 3, true, &r, &err));
    EXPECT_EQ(err, "symbol position 3 for symbol 'helper' in object 'main' not found");
}

TEST(UnitObjects, MissingName) {
    Resolved r;
    std::string err;
    EXPECT_FALSE(graft::resolve_symbol(unit_prog(), "no_such_function", 0, true, &r, &err));
    EXPECT_EQ(err, "symbol 'no_such_function' not found in symbol table");
}

TEST(UnitObjects, DataIsNotAFunction) {
    Resolved r;
    std::string err;
    EXPECT_FALSE(graft::resolve_symbol(unit_prog(), "unit_a", 0, true, &r, &err));
    EXPECT_TRUE(graft::resolve_symbol(unit_prog(), "unit_a", 0, false, &r, &err)) << err;
}

TEST(UnitObjects, DescribeFile) {
    graft::SymbolFile sf;
    std::string err;
    ASSERT_TRUE(graft::describe_file(unit_prog().path, &sf, &err)) << err;
    EXPECT_TRUE(sf.has_interp);
    EXPECT_EQ(sf.build_id.size() % 2, 0u);
    EXPECT_GE(sf.build_id.size(), 16u);
    EXPECT_FALSE(graft::describe_file("/etc/hostname", &sf, &err));
    EXPECT_NE(err.find("is not an ELF file"), std::string::npos) << err;
}
