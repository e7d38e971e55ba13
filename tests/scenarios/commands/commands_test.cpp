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
