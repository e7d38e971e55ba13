// graft diff -o on real fixes from Debian 12's source packages (prepare.sh builds them): the
// library built without one of Debian's CVE fixes, as its maintainers build it, is used by a
// running program started without graft while a thread of it keeps using the library and checks
// every result; `graft diff` makes the patch from the Debian patch file itself, `graft load`
// attaches and applies it, the reproducer shows the bug before and the fix after, disable brings
// the bug back, and the same patch is refused by build-id in a process that runs another build.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "harness.hpp"

using namespace graft::test;

namespace debian_fixes {

std::string fixes_dir() {
    const char *d = std::getenv("GRAFT_DEBIAN_DIR");
    return d && *d ? d : "/var/tmp/graft-debian";
}

bool exists(const std::string &p) {
    struct stat st {};
    return stat(p.c_str(), &st) == 0;
}

std::string hex(const std::string &bytes) {
    static const char *digits = "0123456789abcdef";
    std::string h;
    for (unsigned char c : bytes) {
        h += digits[c >> 4];
        h += digits[c & 15];
    }
    return h;
}

struct Case {
    std::string tree, program, fix, target, other_lib_dir, name;
    std::string bug_request, bug_answer, fixed_answer, good_request, good_answer;
    std::string replaced_line, summary_prefix;
    std::vector<std::string> diff_extra;
};

// The whole story for one project; `so` is written under the test's temporary directory.
void run_case(const Case &c) {
    ASSERT_TRUE(exists(c.program)) << c.program << " is missing: run tests/scenarios/debian_fixes/prepare.sh";
    char tmpl[] = "/tmp/graft-debfix-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string so = std::string(tmpl) + "/" + c.name + ".so";

    Target t(c.program, {}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
    EXPECT_EQ(ask(t, c.bug_request, "parse "), c.bug_answer);  // the bug
    t.send("load\n");
    ASSERT_GE(t.wait_line("loading"), 0) << t.all_output();

    std::vector<std::string> args{"diff", "--source", c.tree, "--fix", c.fix, "--target", c.target, "-o", so};
    args.insert(args.end(), c.diff_extra.begin(), c.diff_extra.end());
    Cmd d = graft_cmd(args, 600);
    ASSERT_EQ(d.rc, 0) << d.err << d.out;
    EXPECT_NE(d.out.find(c.replaced_line), std::string::npos) << d.out;
    EXPECT_NE(d.out.find(c.summary_prefix), std::string::npos) << d.out;

    const std::string pid = std::to_string(t.pid());
    Cmd l = graft_cmd({"load", pid, so});
    ASSERT_EQ(l.rc, 0) << l.err;
    EXPECT_NE(l.err.find("graft: " + pid + ": attaching the agent"), std::string::npos) << l.err;
    EXPECT_EQ(ask(t, c.bug_request, "parse "), c.fixed_answer);  // fixed
    EXPECT_EQ(ask(t, c.good_request, "parse "), c.good_answer);

    Cmd off = graft_cmd({"disable", pid, c.name});
    ASSERT_EQ(off.rc, 0) << off.err;
    ASSERT_TRUE(wait_idle(t.pid()));
    EXPECT_EQ(ask(t, c.bug_request, "parse "), c.bug_answer);  // the bug is back
    auto counts = ask_counts(t, "stats", "stats ");
    EXPECT_GT(counts["checked"], 0) << "the thread using the library did not run";
    EXPECT_EQ(counts["errors"], 0) << "the thread using the library saw a wrong result";

    // Another build of the library (every Debian fix in it): the patch is refused by build-id.
    Target o(c.program, {}, {"LD_LIBRARY_PATH=" + c.other_lib_dir}, /*under_graft=*/false);
    ASSERT_GE(o.wait_line("ready"), 0) << o.all_output();
    o.send("load\n");  // a running thread for the attach to borrow (the main one waits in read)
    ASSERT_GE(o.wait_line("loading"), 0) << o.all_output();
    Cmd lo = graft_cmd({"load", std::to_string(o.pid()), so});
    EXPECT_NE(lo.rc, 0);
    EXPECT_NE(lo.err.find("build-id mismatch: the process runs "), std::string::npos) << lo.err;
    EXPECT_EQ(ask(o, c.good_request, "parse "), c.good_answer);
    std::system(("rm -rf " + std::string(tmpl)).c_str());
}

}  // namespace debian_fixes

// cjson (C, CMake's compilation database): CVE-2023-26819, a number longer than 63 characters is
// cut and the document fails to parse. The fixed function, parse_number, is static and inlined
// into parse_value: the patch replaces parse_value.
TEST(DebianFixes, CjsonCve2023_26819FromDebianPatchesLiveUnderLoad) {
    const std::string dir = debian_fixes::fixes_dir(), tree = dir + "/cjson-unfixed";
    const std::string big = "[1" + std::string(70, '0') + "]";
    debian_fixes::Case c;
    c.tree = tree;
    c.program = tree + "/json_server";
    c.fix = tree + "/debian/patches/0001-allocate-memory-for-the-temporary-buffer.patch";
    c.target = tree + "/build/libcjson.so.1.7.15";
    c.other_lib_dir = dir + "/cjson-1.7.15/build";
    c.name = "cjson_cve_2023_26819";
    c.bug_request = "parse " + big;
    c.bug_answer = "parse error";
    c.fixed_answer = "parse [1e+70]";
    c.good_request = "parse [1.5,-2,\"x\"]";
    c.good_answer = "parse [1.5,-2,\"x\"]";
    c.replaced_line = "patch\tparse_value: changed: it inlines parse_number, which the fix changes\n";
    c.summary_prefix = "function(s) of libcjson.so.1 replaced";
    c.diff_extra = {"--compile-commands", tree + "/build/compile_commands.json"};
    debian_fixes::run_case(c);
}

// tinyxml (C++, a Makefile built under Bear): CVE-2023-34194, a declaration that ends after
// whitespace reaches an assertion and aborts the process (the program parses in a child, which
// reports the crash).
TEST(DebianFixes, TinyxmlCve2023_34194FromDebianPatchesLiveUnderLoad) {
    const std::string dir = debian_fixes::fixes_dir(), tree = dir + "/tinyxml-unfixed";
    debian_fixes::Case c;
    c.tree = tree;
    c.program = tree + "/xml_server";
    c.fix = tree + "/debian/patches/CVE-2023-34194.patch";
    c.target = tree + "/libtinyxml.so.2.6.2";
    c.other_lib_dir = dir + "/tinyxml-2.6.2";
    c.name = "tinyxml_cve_2023_34194";
    c.bug_request = "parse " + debian_fixes::hex("<?xml ");
    c.bug_answer = "parse crash Aborted";
    c.fixed_answer = "parse ok";
    c.good_request = "parse " + debian_fixes::hex("<?xml version=\"1.0\"?><a>x</a>");
    c.good_answer = "parse ok";
    c.replaced_line =
        "patch\tTiXmlDeclaration::Parse(char const*, TiXmlParsingData*, TiXmlEncoding) "
        "[_ZN16TiXmlDeclaration5ParseEPKcP16TiXmlParsingData13TiXmlEncoding]: changed\n";
    c.summary_prefix = "function(s) of libtinyxml.so.2.6.2 replaced";
    debian_fixes::run_case(c);
}

// expat (C, its CMake build): CVE-2024-45490, XML_ParseBuffer takes a negative length and parses
// what it finds instead of refusing the call. The fix moves many __LINE__ constants of the file
// (expat's accounting): they are noted, not patched.
TEST(DebianFixes, ExpatCve2024_45490FromDebianPatchesLiveUnderLoad) {
    const std::string dir = debian_fixes::fixes_dir(), tree = dir + "/expat-unfixed";
    debian_fixes::Case c;
    c.tree = tree;
    c.program = tree + "/expat_server";
    c.fix = tree + "/debian/patches/CVE-2024-45490.patch";
    c.target = tree + "/build/libexpat.so.1.8.10";
    c.other_lib_dir = dir + "/expat-fixed/build";
    c.name = "expat_cve_2024_45490";
    c.bug_request = "parse-len -5 <a>hello</a>";
    c.bug_answer = "parse error no element found";
    c.fixed_answer = "parse error invalid argument";
    c.good_request = "parse <a><b/><c>x</c></a>";
    c.good_answer = "parse ok 3";
    c.replaced_line = "patch\tXML_ParseBuffer: changed\n";
    c.summary_prefix = "function(s) of libexpat.so.1 replaced";
    c.diff_extra = {"--compile-commands", tree + "/build/compile_commands.json"};
    debian_fixes::run_case(c);
}
