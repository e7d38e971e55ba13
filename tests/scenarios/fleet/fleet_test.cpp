// User story: a fix to a shared library must reach every process that runs it. `graft load --all
// fix.so` patches each process of the caller that runs the build the patch was made for
// (attaching where no agent is), lists those running another build as skipped, and ends with a
// count; `graft ps --all`, `graft disable --all` and `graft unload --all` act on the same fleet.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;

namespace {

std::string progs_dir() {
    std::string p = prog_path("fleet_worker");
    return p.substr(0, p.rfind('/'));
}

bool agent_mapped(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str().find("libgraft.so") != std::string::npos;
}

struct Fleet {
    std::vector<std::unique_ptr<Target>> a, b;  // build a (some under graft run), build b
    std::set<pid_t> a_pids, b_pids;
    Fleet(int n_a, int n_under_graft, int n_b) {
        for (int i = 0; i < n_a + n_b; i++) {
            const bool is_a = i < n_a;
            auto t = std::make_unique<Target>(
                prog_path("fleet_worker"), std::vector<std::string>{},
                std::vector<std::string>{"LD_LIBRARY_PATH=" + progs_dir() + (is_a ? "/fleet_a" : "/fleet_b")},
                /*under_graft=*/is_a && i < n_under_graft);
            (is_a ? a_pids : b_pids).insert(t->pid());
            (is_a ? a : b).push_back(std::move(t));
        }
        for (auto &t : a) EXPECT_GE(t->wait_line("ready build a"), 0);
        for (auto &t : b) EXPECT_GE(t->wait_line("ready build b"), 0);
    }
    ~Fleet() {
        for (auto *v : {&a, &b})
            for (auto &t : *v) t->send("quit\n");
        for (auto *v : {&a, &b})
            for (auto &t : *v) EXPECT_EQ(t->wait_exit(), 0);
    }
    // Every process answers `want` to tick, and none saw a value other than 1 or 2.
    void expect_values(int want_a, int want_b) {
        for (auto &t : a)
            EXPECT_EQ(ask(*t, "tick", "value "), "value " + std::to_string(want_a) + " wrong 0");
        for (auto &t : b)
            EXPECT_EQ(ask(*t, "tick", "value "), "value " + std::to_string(want_b) + " wrong 0");
    }
};

// The pids listed in a --json answer with `result`.
std::set<pid_t> pids_with(const nlohmann::json &j, const std::string &result) {
    std::set<pid_t> out;
    for (auto &p : j["processes"])
        if (p["result"] == result) out.insert(p["pid"].get<pid_t>());
    return out;
}

// Restricted to the test's own processes: other tests may run graft'ed processes meanwhile.
template <class Set>
std::set<pid_t> only(const std::set<pid_t> &s, const Set &ours) {
    std::set<pid_t> out;
    for (pid_t p : s)
        if (ours.count(p)) out.insert(p);
    return out;
}

}  // namespace

TEST(Fleet, LoadAllPatchesEveryProcessOfTheBuildAndSkipsTheOthers) {
    SigpipeBlocked sp;
    Fleet fleet(40, 5, 10);
    std::set<pid_t> ours = fleet.a_pids;
    ours.insert(fleet.b_pids.begin(), fleet.b_pids.end());

    Cmd load = graft_cmd({"load", "--all", patch_path("fleet_fix"), "--json"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    auto j = nlohmann::json::parse(load.out);
    EXPECT_EQ(only(pids_with(j, "applied"), ours), fleet.a_pids) << load.out;
    EXPECT_EQ(only(pids_with(j, "skipped"), ours), fleet.b_pids) << load.out;
    EXPECT_TRUE(only(pids_with(j, "failed"), ours).empty()) << load.out;
    for (auto &p : j["processes"]) {
        pid_t pid = p["pid"].get<pid_t>();
        if (fleet.b_pids.count(pid)) {
            EXPECT_NE(p["reason"].get<std::string>().find("it runs libfleet.so with build-id "),
                      std::string::npos)
                << p.dump();
        }
    }
    // The five started under graft run had their agent: the 35 others were attached.
    int attached = 0;
    for (auto &p : j["processes"])
        if (fleet.a_pids.count(p["pid"].get<pid_t>()) && p["attached"].get<bool>()) attached++;
    EXPECT_EQ(attached, 35) << load.out;
    for (pid_t pid : fleet.b_pids) EXPECT_FALSE(agent_mapped(pid)) << "build b was attached: " << pid;
    fleet.expect_values(2, 1);

    // Again: the 40 have it already (skipped, not failed), and the text form ends with a count.
    Cmd again = graft_cmd({"load", "--all", patch_path("fleet_fix")});
    EXPECT_EQ(again.rc, 0) << again.out << again.err;
    for (pid_t pid : fleet.a_pids)
        EXPECT_NE(again.out.find("graft: " + std::to_string(pid) +
                                 " (fleet_worker): skipped: patch 'fleet_fix' is "
                                 "already loaded"),
                  std::string::npos)
            << again.out;
    auto lines = split_lines(again.out);
    ASSERT_FALSE(lines.empty());
    EXPECT_EQ(lines.back().rfind("graft: load --all: 0 applied, ", 0), 0u) << again.out;

    Cmd ps = graft_cmd({"ps", "--all", "--json"});
    ASSERT_EQ(ps.rc, 0) << ps.err;
    std::set<pid_t> listed;
    for (auto &p : nlohmann::json::parse(ps.out)) {
        pid_t pid = p["pid"].get<pid_t>();
        if (!ours.count(pid)) continue;
        listed.insert(pid);
        ASSERT_EQ(p["patches"].size(), 1u) << p.dump();
        EXPECT_EQ(p["patches"][0]["name"], "fleet_fix");
        EXPECT_EQ(p["patches"][0]["state"], "enabled");
    }
    EXPECT_EQ(listed, fleet.a_pids);

    Cmd dis = graft_cmd({"disable", "--all", "fleet_fix", "--wait", "--timeout", "60", "--json"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(only(pids_with(nlohmann::json::parse(dis.out), "disabled"), ours), fleet.a_pids) << dis.out;
    fleet.expect_values(1, 1);

    Cmd unl = graft_cmd({"unload", "--all", "fleet_fix"});
    ASSERT_EQ(unl.rc, 0) << unl.out << unl.err;
    for (pid_t pid : fleet.a_pids)
        EXPECT_NE(unl.out.find("graft: " + std::to_string(pid) + " (fleet_worker): unloaded"),
                  std::string::npos)
            << unl.out;
    Cmd ps2 = graft_cmd({"ps", "--all", "--json"});
    for (auto &p : nlohmann::json::parse(ps2.out))
        if (ours.count(p["pid"].get<pid_t>())) {
            EXPECT_TRUE(p["patches"].empty()) << p.dump();
        }
    fleet.expect_values(1, 1);
}

// --all picks processes by build-id: a patch that records none is refused before any process is
// touched; another user sees only its own processes (none of root's are patched or listed).
TEST(Fleet, LoadAllRefusalsTouchNoProcess) {
    SigpipeBlocked sp;
    Fleet fleet(2, 0, 0);
    expect_refusal(graft_cmd({"load", "--all", patch_path("objects_fix")}),
                   {"load --all: ", "objects_fix.so' records no target build-id", "graft build --target"});
    expect_refusal(graft_cmd({"load", "--all", "1", patch_path("fleet_fix")}),
                   {"load: with --all, name only the patch"});
    for (pid_t pid : fleet.a_pids) EXPECT_FALSE(agent_mapped(pid));
    if (geteuid() == 0) {
        Cmd other = run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", graft_bin(), "load",
                         "--all", patch_path("fleet_fix"), "--json"});
        ASSERT_EQ(other.rc, 0) << other.out << other.err;
        auto j = nlohmann::json::parse(other.out);
        for (auto &p : j["processes"]) EXPECT_FALSE(fleet.a_pids.count(p["pid"].get<pid_t>())) << p.dump();
        for (pid_t pid : fleet.a_pids) EXPECT_FALSE(agent_mapped(pid));
    }
    fleet.expect_values(1, 1);
}
