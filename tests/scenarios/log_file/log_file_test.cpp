// User story: an operator keeps the agent's log in a file (GRAFT_LOG_FILE) on a long-running
// service. The file may not grow without bound inside someone else's process: past
// GRAFT_LOG_FILE_MAX bytes it is renamed to FILE.1 and started anew, and no line is lost or split
// between the two files.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {
std::vector<std::string> file_lines(const std::string &p) {
    std::vector<std::string> v;
    std::ifstream f(p);
    for (std::string l; std::getline(f, l);) v.push_back(l);
    return v;
}
}  // namespace

TEST(LogFile, RotatesPastItsCap) {
    SigpipeBlocked no_sigpipe;
    char tmpl[] = "/tmp/graft-log-file-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl, file = dir + "/agent.log";
    {
        Target t(prog_path("stacking"), {}, {"GRAFT_LOG_FILE=" + file, "GRAFT_LOG_FILE_MAX=4096"});
        ASSERT_GE(t.wait_line("ready"), 0) << t.all_output();
        ASSERT_TRUE(t.wait_agent());
        const std::string pid = std::to_string(t.pid());
        // Each cycle logs about 10 lines of 40-60 bytes: 20 cycles pass the cap twice.
        for (int i = 0; i < 20; i++) {
            ASSERT_EQ(graft_cmd({"load", pid, patch_path("stacking_a"), "--timeout", "60"}).rc, 0);
            ASSERT_EQ(graft_cmd({"disable", pid, "stacking_a", "--wait", "--timeout", "60"}).rc, 0);
            ASSERT_EQ(graft_cmd({"unload", pid, "stacking_a"}).rc, 0);
        }
        auto all = log_lines(t.pid());
        struct stat st {};
        ASSERT_EQ(stat(file.c_str(), &st), 0);
        EXPECT_LE(st.st_size, 4096);
        ASSERT_EQ(stat((file + ".1").c_str(), &st), 0) << "no rotated file";
        EXPECT_LE(st.st_size, 4096);
        EXPECT_GT(st.st_size, 2048);
        // The two files hold the newest lines of the log, whole and in order.
        auto older = file_lines(file + ".1"), newer = file_lines(file);
        std::vector<std::string> kept = older;
        kept.insert(kept.end(), newer.begin(), newer.end());
        ASSERT_LE(kept.size(), all.size());
        std::vector<std::string> tail(all.end() - static_cast<long>(kept.size()), all.end());
        EXPECT_EQ(kept, tail);
        t.send("quit\n");
        EXPECT_EQ(t.wait_exit(), 0);
    }
    std::filesystem::remove_all(dir);
}
