// The command line itself: `graft flags`, `graft run` argument passing and exit status,
// `graft build -- COMPILER_ARGS`, `graft ps`, and the error format for bad requests.
#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

TEST(Commands, FlagsMatchWhatTheTestsBuildWith) {
    Cmd gcc = graft_cmd({"flags", "target", "--cc", "gcc"});
    ASSERT_EQ(gcc.rc, 0) << gcc.err;
    for (const char *f : {"-fpatchable-function-entry=16,14", "-falign-functions=16",
                          "-flive-patching=inline-only-static", "-fno-reorder-blocks-and-partition"})
        EXPECT_NE(gcc.out.find(f), std::string::npos) << f << " missing from: " << gcc.out;
    Cmd clang = graft_cmd({"flags", "target", "--cc", "clang"});
    ASSERT_EQ(clang.rc, 0);
    EXPECT_NE(clang.out.find("-fpatchable-function-entry=16,14"), std::string::npos);
    EXPECT_EQ(clang.out.find("-flive-patching"), std::string::npos) << "clang has no -flive-patching";
    EXPECT_NE(clang.out.find("-fsemantic-interposition"), std::string::npos) << clang.out;
    // The jump layout: 5 bytes at the entry instead of 16, the other flags the same.
    Cmd jump = graft_cmd({"flags", "target", "--cc", "gcc", "--entry", "jump"});
    ASSERT_EQ(jump.rc, 0) << jump.err;
    EXPECT_EQ(jump.out, std::string(gcc.out).replace(gcc.out.find("=16,14"), 6, "=5,0")) << jump.out;
    Cmd patch = graft_cmd({"flags", "patch"});
    ASSERT_EQ(patch.rc, 0);
    EXPECT_NE(patch.out.find("-shared"), std::string::npos);
    EXPECT_NE(patch.out.find("-I"), std::string::npos);
    Cmd bad = graft_cmd({"flags", "kernel"});
    EXPECT_NE(bad.rc, 0);
    EXPECT_EQ(bad.err.rfind("graft: flags: ", 0), 0u) << bad.err;
}

TEST(Commands, RunPassesArgumentsAndExitStatusThrough) {
    Cmd c = graft_cmd({"run", "--", prog_path("echo_args"), "7", "a", "--opt", "-x"});
    EXPECT_EQ(c.rc, 7) << c.err;
    EXPECT_EQ(c.out.substr(0, c.out.find('\n')), "a --opt -x");
    EXPECT_NE(c.out.find("libgraft.so"), std::string::npos) << c.out;
    Cmd d = graft_cmd({"run", prog_path("echo_args"), "0", "--", "b"});
    EXPECT_EQ(d.rc, 0) << d.err;
    EXPECT_EQ(d.out.substr(0, d.out.find('\n')), "-- b");
    Cmd e = graft_cmd({"run", "/nonexistent/program"});
    EXPECT_EQ(e.rc, 127);
    EXPECT_NE(e.err.find("graft: run: cannot run '/nonexistent/program': No such file or directory"),
              std::string::npos)
        << e.err;
}

TEST(Commands, BuildPassesCompilerArgumentsAfterDoubleDash) {
    std::string out = std::string(GRAFT_TEST_PATCHES) + "/commands_define.so";
    std::string src = std::string(GRAFT_TEST_SOURCE_DIR) + "/scenarios/basic/basic_fix.c";
    Cmd ok = graft_cmd({"build", "-o", out, src, "--", "-DUNUSED_MACRO=1", "-Wall", "-Werror"});
    EXPECT_EQ(ok.rc, 0) << ok.err;
    Cmd bad = graft_cmd({"build", "-o", out, src, "--", "-DX=1", "-include", "/nonexistent.h"});
    EXPECT_NE(bad.rc, 0);
    EXPECT_NE(bad.err.find("graft: build: the compiler failed"), std::string::npos) << bad.err;
}

TEST(Commands, PsListsAnsweringAgents) {
    Target t(prog_path("basic"), {"1"});
    ASSERT_GE(t.wait_line("ready"), 0);
    ASSERT_TRUE(t.wait_agent());
    Cmd ps = graft_cmd({"ps", "--json"});
    ASSERT_EQ(ps.rc, 0) << ps.err;
    auto j = nlohmann::json::parse(ps.out);
    bool found = false;
    for (auto &p : j) found = found || p["pid"] == t.pid();
    EXPECT_TRUE(found) << ps.out;
}

TEST(Commands, ProcessWithoutAgentIsAClearError) {
    Target t(prog_path("basic"), {"1"}, {}, /*under_graft=*/false);
    ASSERT_GE(t.wait_line("ready"), 0);
    Cmd c = graft_cmd({"status", std::to_string(t.pid())});
    EXPECT_NE(c.rc, 0);
    EXPECT_NE(c.err.find("no graft agent answers"), std::string::npos) << c.err;
    Cmd d = graft_cmd({"status", "999999999"});
    EXPECT_NE(d.rc, 0);
    EXPECT_NE(d.err.find("No such process"), std::string::npos) << d.err;
}

// graft diff on a C unit built before and after a fix (tests/unit/diff/cases.c): one line per
// function or data object that is not the same, a summary, and the JSON form.
TEST(Commands, DiffReportsWhatAFixChangedInAUnit) {
    const std::string dir = GRAFT_DIFF_CASES;
    Cmd c = graft_cmd({"diff", "--before", dir + "/c_before.o", "--after", dir + "/c_after.o"});
    ASSERT_EQ(c.rc, 0) << c.err;
    for (const char *line : {"changed\tfunction changed_body: ", "changed\tfunction caller_a: ",
                             "changed\tfunction caller_b: ", "new\tfunction brand_new\n",
                             "changed\tdata table: its contents differ from byte 12 (refused: changed data"})
        EXPECT_NE(c.out.find(line), std::string::npos) << line << " missing from:\n" << c.out;
    EXPECT_EQ(c.out.find("uses_string"), std::string::npos) << c.out;
    EXPECT_NE(c.out.find(
                  "': 3 function(s) changed, 2 new, 0 removed, 6 unchanged; 1 data object(s) changed, 0 new"),
              std::string::npos)
        << c.out;
    Cmd j = graft_cmd({"diff", "--before", dir + "/c_before.o", "--after", dir + "/c_after.o", "--json"});
    ASSERT_EQ(j.rc, 0) << j.err;
    auto doc = nlohmann::json::parse(j.out);
    EXPECT_EQ(doc["summary"]["functions"]["changed"], 3) << j.out;
    EXPECT_EQ(doc["summary"]["data"]["changed"], 1) << j.out;
    bool refused = false;
    for (auto &d : doc["data"])
        if (d["name"] == "table") refused = d.contains("refused");
    EXPECT_TRUE(refused) << j.out;
    // The before build against the program made of it, and against the program made of the after
    // build (another build: refused, naming the first function that differs).
    Cmd match = graft_cmd({"diff", "--before", dir + "/c_before.o", "--after", dir + "/c_after.o", "--target",
                           dir + "/program_before"});
    ASSERT_EQ(match.rc, 0) << match.err;
    EXPECT_NE(match.out.find("graft: diff: the before build matches '" + dir + "/program_before' (build-id "),
              std::string::npos)
        << match.out;
    EXPECT_NE(match.out.find("): 3 changed function(s) compared"), std::string::npos) << match.out;
    Cmd other = graft_cmd({"diff", "--before", dir + "/c_before.o", "--after", dir + "/c_after.o", "--target",
                           dir + "/program_after"});
    EXPECT_EQ(other.rc, 1);
    EXPECT_EQ(other.err,
              "graft: diff: your build does not match the running binary: function changed_body differs\n");
    // Not an object file: one line naming it, exit status 1.
    Cmd bad = graft_cmd({"diff", "--before", dir + "/c_before.o", "--after", "/proc/self/exe"});
    EXPECT_EQ(bad.rc, 1);
    EXPECT_NE(bad.err.find("graft: diff: object file '/proc/self/exe' is not a relocatable object (.o)"),
              std::string::npos)
        << bad.err;
}
