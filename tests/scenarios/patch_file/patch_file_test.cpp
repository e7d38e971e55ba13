// User story: the patch file is changed while `graft load` runs — replaced by another file,
// truncated, or rewritten — or it could be changed by someone other than the process's user.
// The agent opens the file once and loads a sealed copy of what it checked: the code that runs
// is the checked file's, or the load is refused with one line; the target never dies (no SIGBUS
// from a mapping of a truncated file). The test hook GRAFT_TEST_HOOK_DIR makes the agent stop
// right after it opened the file ("opened") and after it checked the copy ("checked").
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <sstream>

#include <gtest/gtest.h>

#include "harness.hpp"

using namespace graft::test;
namespace fs = std::filesystem;

namespace {

struct Scratch {
    std::string dir;
    Scratch() {
        char tmpl[] = "/tmp/graft-patch-file-XXXXXX";
        dir = mkdtemp(tmpl) ? tmpl : "";
    }
    ~Scratch() {
        if (!dir.empty()) fs::remove_all(dir);
    }
};

// "value M S1 S2" from the stacking program: M is what value() returns to the main thread.
std::string value_now(Target &t) {
    return ask(t, "get", "value ");
}

bool wait_file(const std::string &p, double timeout = 30) {
    for (int i = 0; i < timeout * 200; i++) {
        if (access(p.c_str(), F_OK) == 0) return true;
        usleep(5000);
    }
    return false;
}

void touch(const std::string &p) {
    FILE *f = fopen(p.c_str(), "w");
    if (f) fclose(f);
}

struct HookedTarget {
    SigpipeBlocked no_sigpipe;
    Scratch hooks, files;
    std::unique_ptr<Target> t;
    std::string pid, file;
    HookedTarget() {
        t = std::make_unique<Target>(prog_path("stacking"), std::vector<std::string>{},
                                     std::vector<std::string>{"GRAFT_TEST_HOOK_DIR=" + hooks.dir});
        pid = std::to_string(t->pid());
        file = files.dir + "/fix.so";
        fs::copy_file(patch_path("stacking_a"), file);  // value() returns 1
        chmod(file.c_str(), 0644);
    }
    bool ready() { return t->wait_line("ready") >= 0 && t->wait_agent() && value_now(*t) == "value 0 0 0"; }
    // Starts `graft load` of the file; returns at once.
    std::future<Cmd> load() {
        return std::async(std::launch::async, [this] {
            return graft_cmd({"load", pid, file, "--timeout", "60"});
        });
    }
    std::string hook(const std::string &point) { return hooks.dir + "/" + point; }
    void release(const std::string &point) { touch(hooks.dir + "/go-" + point); }
};

}  // namespace

TEST(PatchFile, ReplacedAfterOpenLoadsTheFileThatWasOpened) {
    HookedTarget h;
    ASSERT_TRUE(h.ready()) << h.t->all_output();
    auto load = h.load();
    ASSERT_TRUE(wait_file(h.hook("opened")));
    // Another file (value() returns 2) renamed into the path the agent opened.
    std::string other = h.files.dir + "/other.so";
    fs::copy_file(patch_path("stacking_b"), other);
    chmod(other.c_str(), 0644);
    fs::rename(other, h.file);
    h.release("opened");
    h.release("checked");
    Cmd c = load.get();
    ASSERT_EQ(c.rc, 0) << c.out << c.err;
    EXPECT_EQ(value_now(*h.t), "value 1 1 1");
    h.t->send("quit\n");
    EXPECT_EQ(h.t->wait_exit(), 0) << h.t->all_output();
}

TEST(PatchFile, TruncatedBeforeTheCopyIsRefused) {
    HookedTarget h;
    ASSERT_TRUE(h.ready()) << h.t->all_output();
    auto load = h.load();
    ASSERT_TRUE(wait_file(h.hook("opened")));
    ASSERT_EQ(truncate(h.file.c_str(), 4096), 0);
    h.release("opened");
    h.release("checked");
    Cmd c = load.get();
    EXPECT_NE(c.rc, 0) << c.out;
    EXPECT_EQ(split_lines(c.err).size(), 1u) << c.err;
    EXPECT_NE(c.err.find(h.file), std::string::npos) << c.err;
    EXPECT_NE(c.err.find("truncated"), std::string::npos) << c.err;
    EXPECT_EQ(value_now(*h.t), "value 0 0 0");
    auto st = status(h.t->pid());
    EXPECT_TRUE(st["patches"].empty()) << st.dump();
    // A good patch loads afterwards (the hook points are released already).
    fs::remove(h.file);
    fs::copy_file(patch_path("stacking_b"), h.file);
    chmod(h.file.c_str(), 0644);
    Cmd good = h.load().get();
    ASSERT_EQ(good.rc, 0) << good.err;
    EXPECT_EQ(value_now(*h.t), "value 2 2 2");
    h.t->send("quit\n");
    EXPECT_EQ(h.t->wait_exit(), 0) << h.t->all_output();
}

TEST(PatchFile, TruncatedAfterTheChecksLoadsTheCheckedCopy) {
    HookedTarget h;
    ASSERT_TRUE(h.ready()) << h.t->all_output();
    auto load = h.load();
    ASSERT_TRUE(wait_file(h.hook("opened")));
    h.release("opened");
    ASSERT_TRUE(wait_file(h.hook("checked")));
    // Between the checks and dlopen: a mapping of this file would now raise SIGBUS.
    ASSERT_EQ(truncate(h.file.c_str(), 100), 0);
    h.release("checked");
    Cmd c = load.get();
    ASSERT_EQ(c.rc, 0) << c.out << c.err;
    EXPECT_EQ(value_now(*h.t), "value 1 1 1");
    ASSERT_EQ(graft_cmd({"disable", h.pid, "fix", "--wait", "--timeout", "60"}).rc, 0);
    EXPECT_EQ(value_now(*h.t), "value 0 0 0");
    EXPECT_EQ(graft_cmd({"unload", h.pid, "fix"}).rc, 0);
    h.t->send("quit\n");
    EXPECT_EQ(h.t->wait_exit(), 0) << h.t->all_output();
}

TEST(PatchFile, WritableByOthersOrOwnedByAnotherUserIsRefused) {
    HookedTarget h;
    ASSERT_TRUE(h.ready()) << h.t->all_output();
    h.release("opened");
    h.release("checked");
    chmod(h.file.c_str(), 0664);
    Cmd g = h.load().get();
    EXPECT_NE(g.rc, 0);
    EXPECT_EQ(split_lines(g.err).size(), 1u) << g.err;
    EXPECT_NE(g.err.find("is writable by its group (mode 0664)"), std::string::npos) << g.err;
    EXPECT_NE(g.err.find("Permission denied"), std::string::npos) << g.err;
    chmod(h.file.c_str(), 0646);
    Cmd o = h.load().get();
    EXPECT_NE(o.err.find("is writable by others (mode 0646)"), std::string::npos) << o.err;
    chmod(h.file.c_str(), 0644);
    if (geteuid() == 0) {
        ASSERT_EQ(chown(h.file.c_str(), 65534, 65534), 0);
        Cmd u = h.load().get();
        EXPECT_NE(u.rc, 0);
        EXPECT_NE(
            u.err.find("is owned by uid 65534; a patch file must be owned by root or by the process's user"),
            std::string::npos)
            << u.err;
        ASSERT_EQ(chown(h.file.c_str(), 0, 0), 0);
    }
    EXPECT_EQ(value_now(*h.t), "value 0 0 0");
    Cmd ok = h.load().get();
    ASSERT_EQ(ok.rc, 0) << ok.err;
    EXPECT_EQ(value_now(*h.t), "value 1 1 1");
    h.t->send("quit\n");
    EXPECT_EQ(h.t->wait_exit(), 0) << h.t->all_output();
}
