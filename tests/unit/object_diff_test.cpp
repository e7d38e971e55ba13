// graft diff's comparison (src/diff/object_diff.cpp) on small C and C++ units built before and
// after a "fix" by the build's compiler (tests/unit/diff/cases.{c,cpp}; gcc or clang, whichever
// builds the tests): each function and data object must come out as the case says.
#include <gtest/gtest.h>

#include <cxxabi.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "arch/x86_64/immediates.hpp"
#include "diff/compile_db.hpp"
#include "diff/object_diff.hpp"
#include "diff/unified_diff.hpp"

using graft::diff::Change;

namespace {

std::string demangled(const std::string &name) {
    int st = 0;
    char *d = abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &st);
    std::string out = st == 0 && d ? d : name;
    std::free(d);
    return out;
}

// name (demangled, clone numbers normalised) -> change, for functions or for data.
std::map<std::string, Change> compare(const std::string &lang, bool funcs) {
    graft::diff::ObjectPieces a, b;
    std::string why;
    const std::string dir = GRAFT_DIFF_CASES;
    EXPECT_TRUE(graft::diff::read_object(dir + "/" + lang + "_before.o", &a, &why)) << why;
    EXPECT_TRUE(graft::diff::read_object(dir + "/" + lang + "_after.o", &b, &why)) << why;
    std::map<std::string, Change> out;
    for (const auto &p : graft::diff::diff_objects(a, b).pieces)
        if (p.func == funcs) out[graft::diff::normalise_name(demangled(p.name))] = p.change;
    return out;
}

// The change of the first entry whose name starts with `prefix`; kSame when none (absent pieces
// are checked separately).
Change change_of(const std::map<std::string, Change> &m, const std::string &prefix) {
    for (const auto &[k, v] : m)
        if (k.rfind(prefix, 0) == 0) return v;
    ADD_FAILURE() << "no piece named " << prefix << "...";
    return Change::kRemoved;
}

}  // namespace

TEST(UnitObjectDiff, CUnitChangedInlinedNewAndData) {
    auto f = compare("c", true);
    EXPECT_EQ(change_of(f, "changed_body"), Change::kChanged);
    // The changed static function was inlined into both of its callers: both changed.
    EXPECT_EQ(change_of(f, "caller_a"), Change::kChanged);
    EXPECT_EQ(change_of(f, "caller_b"), Change::kChanged);
    EXPECT_EQ(change_of(f, "caller_c"), Change::kSame);
    EXPECT_EQ(change_of(f, "unchanged"), Change::kSame);
    // Its string literals moved (one was added before them): compared by text, the same.
    EXPECT_EQ(change_of(f, "uses_string"), Change::kSame);
    EXPECT_EQ(change_of(f, "bump"), Change::kSame);
    EXPECT_EQ(change_of(f, "uses_clone"), Change::kSame);
    EXPECT_EQ(change_of(f, "brand_new"), Change::kNew);
    EXPECT_EQ(change_of(f, "added_first"), Change::kNew);
    auto d = compare("c", false);
    EXPECT_EQ(change_of(d, "table"), Change::kChanged);
    EXPECT_EQ(change_of(d, "constant_table"), Change::kSame);
    // String literals are not data of the unit: they are compared where they are used.
    for (const auto &[k, v] : d) EXPECT_EQ(k.find(".L"), std::string::npos) << k;
}

TEST(UnitObjectDiff, CxxTemplateInlineLambdaAndStaticLocal) {
    auto f = compare("cpp", true);
    EXPECT_EQ(change_of(f, "use_inline("), Change::kChanged);
    EXPECT_EQ(change_of(f, "use_template("), Change::kChanged);
    EXPECT_EQ(change_of(f, "sort_desc("), Change::kChanged);
    EXPECT_EQ(change_of(f, "count_even("), Change::kSame);
    EXPECT_EQ(change_of(f, "next_id("), Change::kSame);
    // The lambda's code lives in the sort's instantiations for its type: at least one changed.
    int lambda_changed = 0;
    for (const auto &[k, v] : f)
        if (k.find("sort_desc") != std::string::npos && k.find("lambda") != std::string::npos &&
            v == Change::kChanged)
            lambda_changed++;
    // clang names the lambda's type `$_0`, gcc `{lambda(int, int)#1}`.
    for (const auto &[k, v] : f)
        if (k.find("sort_desc") != std::string::npos && k.find("$_") != std::string::npos &&
            v == Change::kChanged)
            lambda_changed++;
    EXPECT_GE(lambda_changed, 1);
    auto d = compare("cpp", false);
    EXPECT_EQ(change_of(d, "next_id()::id"), Change::kChanged);
}

TEST(UnitObjectDiff, ClonesAndStaticLocalsCorrelateAcrossNumbering) {
    using graft::diff::normalise_name;
    EXPECT_EQ(normalise_name("f.isra.0"), normalise_name("f.isra.3"));
    EXPECT_EQ(normalise_name("f.constprop.0.isra.0"), "f.constprop.N.isra.N");
    EXPECT_EQ(normalise_name("counter.1"), "counter.N");
    EXPECT_EQ(normalise_name("f.cold"), "f.cold");
    EXPECT_EQ(normalise_name("v1.2x"), "v1.2x");  // not a number component
    EXPECT_NE(normalise_name("f.part.0"), normalise_name("f.isra.0"));
}

TEST(UnitObjectDiff, WhatIsNotARelocatableX86ObjectIsRefusedWithItsReason) {
    graft::diff::ObjectPieces p;
    std::string why;
    EXPECT_FALSE(graft::diff::read_object("/nonexistent/x.o", &p, &why));
    EXPECT_NE(why.find("cannot open object file '/nonexistent/x.o'"), std::string::npos) << why;
    // A source file, a linked program.
    EXPECT_FALSE(graft::diff::read_object(std::string(GRAFT_DIFF_CASES) + "/../../CMakeCache.txt", &p, &why));
    EXPECT_NE(why.find("is not an ELF file"), std::string::npos) << why;
    EXPECT_FALSE(graft::diff::read_object("/proc/self/exe", &p, &why));
    EXPECT_NE(why.find("is not a relocatable object"), std::string::npos) << why;
    // Truncated in the middle of its sections.
    const std::string src = std::string(GRAFT_DIFF_CASES) + "/c_before.o";
    std::ifstream in(src, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 512u);
    char tmpl[] = "/tmp/graft-diff-XXXXXX";
    int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, bytes.data(), bytes.size() / 2), static_cast<ssize_t>(bytes.size() / 2));
    close(fd);
    EXPECT_FALSE(graft::diff::read_object(tmpl, &p, &why));
    EXPECT_FALSE(why.empty());
    unlink(tmpl);
}

TEST(UnitObjectDiff, CompileCommandsAreReplayedWithTheirOwnArgumentsOnly) {
    std::vector<std::string> a;
    ASSERT_TRUE(graft::diff::split_command(
        R"(cc -O2 "-DNAME=\"a b\"" 'x y' a\ b -MD -MF dep.d -c s.c -o out.o)", &a));
    EXPECT_EQ(a, (std::vector<std::string>{"cc", "-O2", "-DNAME=\"a b\"", "x y", "a b", "-MD", "-MF", "dep.d",
                                           "-c", "s.c", "-o", "out.o"}));
    std::vector<std::string> open_quote;
    EXPECT_FALSE(graft::diff::split_command("cc 'open", &open_quote));
    graft::diff::CompileCommand c{"/src", "/src/s.c", a};
    auto r = graft::diff::recompile_args(c, "/tmp/w/before-0.o");
    EXPECT_EQ(r, (std::vector<std::string>{"cc", "-O2", "-DNAME=\"a b\"", "x y", "a b", "s.c",
                                           "-ffunction-sections", "-fdata-sections", "-c", "-o",
                                           "/tmp/w/before-0.o"}));
}

TEST(UnitObjectDiff, FixHeadersGiveTheTouchedFilesAndTheStripLevel) {
    graft::diff::FixFiles f;
    std::string why;
    ASSERT_TRUE(graft::diff::parse_fix(
        "Subject: x\n\n--- a/src/u.c\t2026-01-01\n+++ b/src/u.c\t2026-01-02\n@@ -1 +1 @@\n"
        "-x\n+y\n--- /dev/null\n+++ b/new.h\n@@ -0,0 +1 @@\n+z\n",
        &f, &why))
        << why;
    EXPECT_EQ(f.strip, 1);
    ASSERT_EQ(f.files.size(), 2u);
    EXPECT_EQ(f.files[0].path, "src/u.c");
    EXPECT_EQ(f.files[1].path, "new.h");
    EXPECT_TRUE(f.files[1].created);
    EXPECT_FALSE(graft::diff::parse_fix("just text\n", &f, &why));
    EXPECT_NE(why.find("not a unified diff"), std::string::npos) << why;
    EXPECT_FALSE(graft::diff::parse_fix("--- a/../etc/passwd\n+++ b/../etc/passwd\n", &f, &why));
    EXPECT_NE(why.find("outside the source tree"), std::string::npos) << why;
}

// __LINE__ alone: where the fix moves each old line, and code that differs only in immediates.
TEST(UnitObjectDiff, LineShiftsAndImmediateOnlyDifferences) {
    graft::diff::FixFiles f;
    std::string why;
    // Old lines 5-10 become new 5-11: one line added after old line 7.
    ASSERT_TRUE(graft::diff::parse_fix(
        "--- a/u.c\n+++ b/u.c\n@@ -5,6 +5,7 @@\n a\n b\n c\n+new\n d\n e\n f\n", &f, &why))
        << why;
    const auto &u = f.files.at(0);
    EXPECT_EQ(graft::diff::line_shift(u, 3), 0);
    EXPECT_EQ(graft::diff::line_shift(u, 6), 0);   // context before the added line
    EXPECT_EQ(graft::diff::line_shift(u, 8), 1);   // context after it
    EXPECT_EQ(graft::diff::line_shift(u, 30), 1);  // after the hunk
    ASSERT_TRUE(graft::diff::parse_fix("--- a/u.c\n+++ b/u.c\n@@ -5,2 +5,1 @@\n-gone\n kept\n", &f, &why))
        << why;
    EXPECT_EQ(graft::diff::line_shift(f.files.at(0), 5), INT32_MIN);  // removed by the fix
    EXPECT_EQ(graft::diff::line_shift(f.files.at(0), 9), -1);
    // mov $29,%edx; ret  against  mov $30,%edx; ret: one immediate pair. A different register is
    // not an immediate.
    const uint8_t a[] = {0xba, 29, 0, 0, 0, 0xc3}, b[] = {0xba, 30, 0, 0, 0, 0xc3},
                  c[] = {0xb9, 30, 0, 0, 0, 0xc3};
    std::vector<std::pair<int64_t, int64_t>> pairs;
    ASSERT_TRUE(graft::arch::differ_only_in_immediates(a, b, sizeof a, &pairs));
    ASSERT_EQ(pairs.size(), 1u);
    EXPECT_EQ(pairs[0], (std::pair<int64_t, int64_t>{29, 30}));
    pairs.clear();
    EXPECT_FALSE(graft::arch::differ_only_in_immediates(a, c, sizeof a, &pairs));
}
