// User story: a hardened service forbids itself memory that is writable and executable
// (prctl(PR_SET_MDWE), what systemd's MemoryDenyWriteExecute= asks for). graft must patch it
// without ever making a page writable+executable: under `graft run` and attached, built as a
// graft target or the way distributions build, with a library opened after the patch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness.hpp"

using namespace graft::test;

namespace mdwe_scenario {

// The executable mappings of `pid`, one per line as /proc/PID/maps has them.
std::string code_mappings(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    std::string out;
    for (std::string line; std::getline(f, line);) {
        std::istringstream ls(line);
        std::string range, perms;
        if (ls >> range >> perms && perms.size() > 2 && perms[2] == 'x') out += line + "\n";
    }
    return out;
}

// Starts `prog`, checks that MDWE is in force in it (skips where the kernel has no MDWE), and
// runs `cycles` rounds of load, check, disable, check, unload while its workers call greet().
void mdwe_rounds(const std::string &prog, bool under_graft, int cycles) {
    Target t(prog_path(prog), {"3"}, {}, under_graft);
    const int ready = t.wait_line("ready");
    ASSERT_GE(ready, 0) << t.all_output();
    const std::string line = t.lines()[static_cast<size_t>(ready)];
    if (line.find("mdwe=-1") != std::string::npos) GTEST_SKIP() << "this kernel has no PR_SET_MDWE: " << line;
    ASSERT_NE(line.find("mdwe=1 refused=1"), std::string::npos) << line;
    if (under_graft) {
        ASSERT_TRUE(t.wait_agent());
    }
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(ask(t, "tick", "greet "), "greet 1 wrong 0");

    for (int r = 0; r < cycles; r++) {
        Cmd load = graft_cmd({"load", pid, patch_path("mdwe_fix")});
        ASSERT_EQ(load.rc, 0) << "round " << r << ": " << load.err << load.out << target_state(t);
        if (r == 0 && !under_graft)
            EXPECT_EQ(split_lines(load.err),
                      std::vector<std::string>{"graft: " + pid + ": attaching the agent"});
        else
            EXPECT_EQ(load.err, "");
        EXPECT_NE(load.out.find("graft: 'mdwe_fix': patching complete"), std::string::npos) << load.out;
        EXPECT_EQ(ask(t, "tick", "greet "), "greet 2 wrong 0") << "round " << r;
        // The library comes after the patch: patched as it is opened (the first round), or
        // already open and patched with the rest (later rounds).
        EXPECT_EQ(ask(t, "open", "lib "), "lib 20") << "round " << r << "\n" << t.all_output();
        // A graft target's patchable entries need 2- and 8-byte code stores, which only a
        // writable page allows: in this process every entry is rewritten instead.
        auto st = status(t.pid());
        int funcs = 0;
        for (auto &o : st["patches"][0]["objects"])
            for (auto &f : o["funcs"]) {
                EXPECT_EQ(f["entry"], "rewritten") << o["name"] << ": " << f.dump();
                funcs++;
            }
        EXPECT_EQ(funcs, 2) << st.dump();
        EXPECT_EQ(ask(t, "wx", "wx "), "wx 0") << "round " << r;

        Cmd dis = graft_cmd({"disable", pid, "mdwe_fix", "--wait", "--timeout", "60"});
        ASSERT_EQ(dis.rc, 0) << dis.err << target_state(t);
        EXPECT_EQ(ask(t, "tick", "greet "), "greet 1 wrong 0") << "round " << r;
        EXPECT_EQ(ask(t, "open", "lib "), "lib 10") << "round " << r;
        Cmd unl = graft_cmd({"unload", pid, "mdwe_fix"});
        ASSERT_EQ(unl.rc, 0) << unl.err;
        EXPECT_EQ(ask(t, "wx", "wx "), "wx 0") << "round " << r;
    }
    // Nothing in the log says a write failed or the core refuses.
    for (auto &l : log_lines(t.pid())) {
        EXPECT_EQ(l.find("cannot"), std::string::npos) << l;
        EXPECT_EQ(l.find("refus"), std::string::npos) << l;
    }
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0) << t.all_output();
}

}  // namespace mdwe_scenario

TEST(Mdwe, GraftTargetUnderGraftRun) {
    mdwe_scenario::mdwe_rounds("mdwe", true, 3);
}

TEST(Mdwe, GraftTargetAttached) {
    mdwe_scenario::mdwe_rounds("mdwe", false, 3);
}

TEST(Mdwe, DistributionBuildAttached) {
    mdwe_scenario::mdwe_rounds("mdwe_plain", false, 3);
}

// A patch whose code ld.so must write to relocate (DT_TEXTREL) cannot be loaded where code may
// never become writable and then executable: refused by name before dlopen, the process as it was.
TEST(Mdwe, PatchWithTextRelocationsIsRefusedUnchanged) {
    char dir[] = "/tmp/graft-mdwe-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    const std::string so = std::string(dir) + "/mdwe_textrel.so";
    Cmd cc = run({GRAFT_TEST_CC, "-shared", "-fno-pic", "-mcmodel=large", "-O2", "-DMDWE_TEXTREL",
                  "-Wl,-z,notext", "-I" + std::string(GRAFT_TEST_INCLUDE), "-o", so,
                  std::string(GRAFT_TEST_SOURCE_DIR) + "/scenarios/mdwe/mdwe_fix.c"});
    ASSERT_EQ(cc.rc, 0) << cc.err;
    Cmd re = run({"readelf", "-d", so});
    ASSERT_NE(re.out.find("TEXTREL"), std::string::npos) << re.out;

    Target t(prog_path("mdwe_plain"), {"2"}, {}, /*under_graft=*/false);
    const int ready = t.wait_line("ready");
    ASSERT_GE(ready, 0) << t.all_output();
    if (t.lines()[static_cast<size_t>(ready)].find("mdwe=1 refused=1") == std::string::npos)
        GTEST_SKIP() << "MDWE is not in force: " << t.lines()[static_cast<size_t>(ready)];
    const std::string pid = std::to_string(t.pid());
    ASSERT_EQ(graft_cmd({"attach", pid}).rc, 0);
    const std::string code_before = mdwe_scenario::code_mappings(t.pid());

    Cmd load = graft_cmd({"load", pid, so});
    EXPECT_NE(load.rc, 0) << load.out;
    EXPECT_NE(load.err.find("has relocations in its code (a patch made by `graft diff`), which the dynamic "
                            "loader applies by making the code writable first; this process forbids"),
              std::string::npos)
        << load.err;
    EXPECT_EQ(ask(t, "tick", "greet "), "greet 1 wrong 0");
    EXPECT_EQ(ask(t, "wx", "wx "), "wx 0");
    EXPECT_EQ(mdwe_scenario::code_mappings(t.pid()), code_before);  // nothing of the patch mapped
    Cmd list = graft_cmd({"list", pid});
    EXPECT_EQ(list.rc, 0) << list.err;
    EXPECT_EQ(list.out.find("mdwe"), std::string::npos) << list.out;

    // The same fix built as graft builds patches goes in.
    Cmd ok = graft_cmd({"load", pid, patch_path("mdwe_fix")});
    EXPECT_EQ(ok.rc, 0) << ok.err;
    EXPECT_EQ(ask(t, "tick", "greet "), "greet 2 wrong 0");
    t.send("quit\n");
    EXPECT_EQ(t.wait_exit(), 0);
    std::filesystem::remove_all(dir);
}
