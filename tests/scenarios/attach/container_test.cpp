// User story: the service to fix runs in a container: its own pid, mount and network namespaces,
// where graft's files are not. `graft load PID fix.so`, with the pid as the host sees it, attaches
// the agent (a copy placed in the container's own /tmp), reaches its control socket in the
// container's network namespace and loads the patch (copied the same way); every other
// subcommand works on that pid too.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace graft_container_test {

using graft::test::Cmd;
using graft::test::Target;

std::string ns_link(pid_t pid, const char *kind) {
    std::error_code ec;
    auto p = std::filesystem::read_symlink(
        "/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/ns/" + kind, ec);
    return ec ? std::string() : p.string();
}

// The first child of `pid` (0 if none yet).
pid_t first_child(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    long c = 0;
    return (f >> c) ? static_cast<pid_t>(c) : 0;
}

std::string read_all(const std::string &path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The directory graft finds its agent in, as graft::cli::agent_path() does for this build.
std::string agent_dir() {
    const std::string bin = graft::test::graft_bin();
    const std::string d = bin.substr(0, bin.rfind('/'));
    for (const std::string &c : {d + "/../lib", d})
        if (access((c + "/libgraft.so").c_str(), R_OK) == 0) {
            char r[PATH_MAX];
            return realpath(c.c_str(), r) ? std::string(r) : c;
        }
    return {};
}

bool can_make_namespaces() {
    return graft::test::run({"unshare", "--pid", "--mount", "--net", "--fork", "true"}).rc == 0;
}

// A container: pid 1 is a shell that hides graft's agent and patches behind empty file systems,
// then runs `command` (a child: the shell stays pid 1) with the test's stdin.
Target container(const std::string &command) {
    const std::string patch = graft::test::patch_path("basic_fix");
    const std::string script = "mount -t tmpfs graft-hidden '" + agent_dir() +
                               "' && mount -t tmpfs graft-hidden '" + patch.substr(0, patch.rfind('/')) +
                               "' && " + command + "; r=$?; exit $r";
    return Target("/usr/bin/unshare",
                  {"--pid", "--mount", "--net", "--fork", "--kill-child", "--mount-proc", "sh", "-c", script},
                  {},
                  /*under_graft=*/false);
}

// The service's pid, as the host sees it, once it said "ready".
void service_of(Target &c, pid_t *svc) {
    ASSERT_GE(c.wait_line("ready"), 0) << c.all_output();
    const pid_t init = first_child(c.pid());
    ASSERT_GT(init, 0);
    *svc = first_child(init);
    ASSERT_GT(*svc, 0);
}

}  // namespace graft_container_test

TEST(Attach, ProcessInOtherPidMountAndNetworkNamespaces) {
    namespace ct = graft_container_test;
    if (geteuid() != 0 || !ct::can_make_namespaces())
        GTEST_SKIP() << "needs root and unshare(1) with pid, mount and network namespaces";
    const std::string agent_dir = ct::agent_dir();
    ASSERT_FALSE(agent_dir.empty());
    const std::string patch = graft::test::patch_path("basic_fix");
    const std::string patch_dir = patch.substr(0, patch.rfind('/'));
    Target c = ct::container("'" + graft::test::prog_path("basic") + "' 4");
    pid_t svc = 0;
    ASSERT_NO_FATAL_FAILURE(ct::service_of(c, &svc));
    const std::string pid = std::to_string(svc);
    for (const char *kind : {"pid", "mnt", "net"})
        ASSERT_NE(ct::ns_link(svc, kind), ct::ns_link(0, kind)) << kind;
    // Its pid in there is another number (the socket is named by that one).
    const std::string status = ct::read_all("/proc/" + pid + "/status");
    const size_t nspid = status.find("NSpid:\t" + pid + "\t");
    ASSERT_NE(nspid, std::string::npos) << status;
    EXPECT_NE(std::atoi(status.c_str() + nspid + 7 + pid.size() + 1), svc) << status;
    // graft's files are not where graft has them, as the service sees its files.
    struct stat st {};
    EXPECT_NE(stat(("/proc/" + pid + "/root" + agent_dir + "/libgraft.so").c_str(), &st), 0);
    EXPECT_NE(stat(("/proc/" + pid + "/root" + patch).c_str(), &st), 0);
    ASSERT_EQ(graft::test::ask(c, "tick", "greet "), "greet 1");

    Cmd load = graft::test::graft_cmd({"load", pid, patch});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_EQ(load.err, "graft: " + pid + ": attaching the agent\n");
    EXPECT_NE(load.out.find("graft: 'basic_fix': patching complete"), std::string::npos) << load.out;
    EXPECT_EQ(graft::test::ask(c, "tick", "greet "), "greet 2");
    // The service maps a copy of the agent placed in its own /tmp; the patch's copy there was
    // read into the agent's sealed copy and removed.
    const std::string maps = ct::read_all("/proc/" + pid + "/maps");
    const size_t copy = maps.find(" /tmp/graft-");
    ASSERT_NE(copy, std::string::npos) << maps;
    EXPECT_EQ(maps.compare(copy + 24, 13, "/libgraft.so\n"), 0) << maps.substr(copy, 60);
    EXPECT_EQ(maps.find(agent_dir + "/libgraft.so"), std::string::npos) << maps;
    const size_t sealed = maps.find("/memfd:graft-patch:/tmp/graft-");
    ASSERT_NE(sealed, std::string::npos) << maps;
    const std::string patch_copy = maps.substr(sealed + 19, maps.find(" (deleted)", sealed) - sealed - 19);
    EXPECT_EQ(patch_copy.substr(patch_copy.rfind('/')), "/basic_fix.so");
    EXPECT_NE(stat(("/proc/" + pid + "/root" + patch_copy).c_str(), &st), 0) << patch_copy;

    // Every subcommand reaches the agent by the host's pid.
    Cmd list = graft::test::graft_cmd({"list", pid});
    ASSERT_EQ(list.rc, 0) << list.err;
    EXPECT_NE(list.out.find("basic_fix"), std::string::npos) << list.out;
    auto th = graft::test::threads(svc);
    EXPECT_EQ(th.size(), 6u) << th.dump();
    for (auto &x : th) EXPECT_EQ(x["pending"], false) << x.dump();
    Cmd again = graft::test::graft_cmd({"attach", pid});
    EXPECT_EQ(again.rc, 0) << again.err;
    EXPECT_EQ(again.out, "graft: " + pid + ": the agent is already loaded; nothing to do\n");
    Cmd dis = graft::test::graft_cmd({"disable", pid, "basic_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.err;
    EXPECT_EQ(graft::test::ask(c, "tick", "greet "), "greet 1");
    EXPECT_EQ(graft::test::graft_cmd({"unload", pid, "basic_fix"}).rc, 0);
    // A patch loaded again is copied again, and works again.
    Cmd reload = graft::test::graft_cmd({"load", pid, patch});
    ASSERT_EQ(reload.rc, 0) << reload.out << reload.err;
    EXPECT_EQ(reload.err, "");
    EXPECT_EQ(graft::test::ask(c, "tick", "greet "), "greet 2");
    // --all finds its agent in its own network namespace, named by its own pid there, and lists
    // and controls it by the host's pid.
    Cmd ps = graft::test::graft_cmd({"ps", "--all", "--json"});
    ASSERT_EQ(ps.rc, 0) << ps.err;
    bool listed = false;
    for (auto &p : nlohmann::json::parse(ps.out))
        if (p["pid"].get<pid_t>() == svc) {
            listed = true;
            ASSERT_EQ(p["patches"].size(), 1u) << p.dump();
            EXPECT_EQ(p["patches"][0]["name"], "basic_fix") << p.dump();
        }
    EXPECT_TRUE(listed) << ps.out;
    Cmd dis_all = graft::test::graft_cmd({"disable", "--all", "basic_fix", "--wait", "--timeout", "60"});
    EXPECT_EQ(dis_all.rc, 0) << dis_all.out << dis_all.err;
    EXPECT_NE(dis_all.out.find(pid), std::string::npos) << dis_all.out;
    EXPECT_EQ(graft::test::ask(c, "tick", "greet "), "greet 1");
    c.send("quit\n");
    EXPECT_EQ(c.wait_exit(), 0);
}

// A daemon in a container that switched users (not dumpable): `graft` passes its agent the
// threads' /proc syscall files, opened in the procfs the container mounted (the one the agent's
// /proc/self is) and named by the container's thread ids, so blocked threads are checked where
// they stand there too: no signal, no EINTR.
TEST(Attach, NonDumpableDaemonInAContainerHasItsBlockedThreadsCheckedWhereTheyStand) {
    namespace ct = graft_container_test;
    if (geteuid() != 0 || !ct::can_make_namespaces())
        GTEST_SKIP() << "needs root and unshare(1) with pid, mount and network namespaces";
#if defined(GRAFT_TEST_AGENT_ASAN)
    GTEST_SKIP() << "an ASan-built agent cannot start in a non-dumpable process";
#endif
    Target c = ct::container("'" + graft::test::prog_path("attach_idle") + "' nobody");
    pid_t svc = 0;
    ASSERT_NO_FATAL_FAILURE(ct::service_of(c, &svc));
    const std::string pid = std::to_string(svc);
    ASSERT_NE(ct::read_all("/proc/" + pid + "/status").find("Uid:\t65534"), std::string::npos);
    Cmd load = graft::test::graft_cmd(
        {"load", pid, graft::test::patch_path("no_disturbance_fix"), "--timeout", "60"});
    ASSERT_EQ(load.rc, 0) << load.out << load.err;
    EXPECT_NE(load.out.find("'no_disturbance_fix': patching complete"), std::string::npos) << load.out;
    // The attach says the process is not dumpable; nothing says a thread's file was missing.
    EXPECT_NE(load.err.find(": warning: the process is not dumpable"), std::string::npos) << load.err;
    EXPECT_EQ(load.err.find("graft passed its agent"), std::string::npos) << load.err;
    EXPECT_EQ(graft::test::ask(c, "tick", "work "), "work 2");
    Cmd dis = graft::test::graft_cmd({"disable", pid, "no_disturbance_fix", "--wait", "--timeout", "60"});
    ASSERT_EQ(dis.rc, 0) << dis.out << dis.err;
    EXPECT_EQ(graft::test::ask(c, "tick", "work "), "work 1");
    for (auto &l : graft::test::log_lines(svc)) {
        EXPECT_EQ(l.find("signaling remaining threads"), std::string::npos) << l;
        EXPECT_EQ(l.find("Permission denied"), std::string::npos) << l;
    }
    EXPECT_EQ(graft::test::ask(c, "counts", "counts "), "counts pipe=0 cond=0 epoll=0 eintr=0");
    c.send("quit\n");
    EXPECT_EQ(c.wait_exit(), 0) << c.all_output();
}
