// Stands for the kernel's tools/testing/selftests/livepatch/test-ftrace.sh and test-kprobe.sh
// (reference: kernel-livepatch.md 8.7 and 8.9). A process has no ftrace sysctl and no kprobes;
// what those tests prove — a second user of a function's entry hook makes livepatch refuse that
// function (`failed to register ftrace handler for function 'cmdline_proc_show' (-16)`), and the
// refusal leaves everything as it was — becomes: another tool has already overwritten
// hooked_show()'s patchable entry in klp_hook_host (a jmp in the nop padding, as graft would
// write it). `graft load` of a patch for it must fail with an error naming the function, before
// anything is enabled: unlike the kernel, which notices the conflict only while registering the
// ftrace handler (after "enabling" and "initializing", then cancels), the agent checks every
// entry while it resolves the patch, so no "enabling" line and no transition lines appear. The
// other tool's hook must keep working, and a patch for another function must still load.
#include <gtest/gtest.h>

#include "harness.hpp"
#include "klp_session.hpp"

using namespace graft::test;

namespace {

struct HookHost {
    Target t{prog_path("klp_hook_host")};

    std::string ask_ok(const std::string &cmd) {
        std::string a = ask(t, cmd, "", 60);  // the next line is the answer
        EXPECT_EQ(a.rfind("ok", 0), 0u) << cmd << " -> " << a << " (" << target_state(t) << ")";
        return a;
    }
    // The answer's text after "ok CMD: ".
    std::string value(const std::string &cmd) {
        std::string a = ask(t, cmd, "ok " + cmd, 60);
        std::string prefix = "ok " + cmd + ": ";
        EXPECT_EQ(a.rfind(prefix, 0), 0u) << cmd << " -> " << a;
        return a.rfind(prefix, 0) == 0 ? a.substr(prefix.size()) : a;
    }
    void mark(const std::string &text) { ask(t, "log % " + text, "ok log", 60); }
    std::vector<std::string> transcript() { return klp_transcript(t.pid()); }
};

TEST(KlpEntryConflict, PatchRefusedForAFunctionAnotherToolHooked) {
    SigpipeBlocked no_sigpipe;
    HookHost h;
    ASSERT_GE(h.t.wait_line("ready"), 0) << target_state(h.t);
    ASSERT_TRUE(h.t.wait_agent()) << target_state(h.t);
    const std::string pid = std::to_string(h.t.pid());

    EXPECT_EQ(h.value("hooked"), "klp_hook_host: original hooked_show");
    h.mark("hook hooked_show");
    EXPECT_EQ(h.ask_ok("hook"), "ok hook");
    EXPECT_EQ(h.value("hooked"), "other tool: hooked_show intercepted");
    std::string entry_before = h.value("entry");

    h.mark("graft load test_klp_hooked.so");
    Cmd c = graft_cmd({"load", pid, patch_path("test_klp_hooked")});
    EXPECT_NE(c.rc, 0) << "the load should have failed: " << c.out;
    std::string err = c.err.substr(0, c.err.find('\n'));
    EXPECT_NE(err.find("'hooked_show'"), std::string::npos) << err;
    EXPECT_NE(err.find("cannot be patched"), std::string::npos) << err;
    // The kernel's reason is -EBUSY (ftrace: the entry already has an IPMODIFY user), and so is
    // this one: the entry exists but is someone else's. "Build it with $(graft flags target)"
    // would send the user after a problem they do not have.
    EXPECT_EQ(err.find("build it with"), std::string::npos) << err;
    const std::string busy = ": Device or resource busy";
    EXPECT_TRUE(err.size() > busy.size() && err.compare(err.size() - busy.size(), busy.size(), busy) == 0)
        << err;
    h.mark(err);

    // Exactly as it was: the other tool's bytes, its hook running, no patch listed.
    EXPECT_EQ(h.value("entry"), entry_before);
    EXPECT_EQ(h.value("hooked"), "other tool: hooked_show intercepted");
    nlohmann::json st = status(h.t.pid());
    EXPECT_TRUE(st["patches"].empty() && st["unloadable"].empty()) << st.dump(2);

    // A patch for a function nobody hooked still loads, and the hook still works beside it.
    h.mark("graft load test_klp_unhooked.so");
    c = graft_cmd({"load", pid, patch_path("test_klp_unhooked")});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(h.value("unhooked"), "test_klp_unhooked: this has been live patched");
    EXPECT_EQ(h.value("hooked"), "other tool: hooked_show intercepted");
    EXPECT_EQ(h.value("entry"), entry_before);
    h.mark("graft disable test_klp_unhooked");
    c = graft_cmd({"disable", pid, "test_klp_unhooked"});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_TRUE(wait_status(h.t.pid(), [](const nlohmann::json &s) { return s["patches"].empty(); }));
    h.mark("graft unload test_klp_unhooked");
    c = graft_cmd({"unload", pid, "test_klp_unhooked"});
    EXPECT_EQ(c.rc, 0) << c.err;
    EXPECT_EQ(h.value("unhooked"), "klp_hook_host: original unhooked_show");
    EXPECT_EQ(h.value("hooked"), "other tool: hooked_show intercepted");

    EXPECT_EQ(join_lines(h.transcript()),
              "% hook hooked_show\n"
              "% graft load test_klp_hooked.so\n"
              "% " +
                  err + "\n" +
                  R"(% graft load test_klp_unhooked.so
graft: enabling patch 'test_klp_unhooked'
graft: 'test_klp_unhooked': initializing patching transition
graft: 'test_klp_unhooked': starting patching transition
graft: 'test_klp_unhooked': completing patching transition
graft: 'test_klp_unhooked': patching complete
% graft disable test_klp_unhooked
graft: 'test_klp_unhooked': initializing unpatching transition
graft: 'test_klp_unhooked': starting unpatching transition
graft: 'test_klp_unhooked': completing unpatching transition
graft: 'test_klp_unhooked': unpatching complete
% graft unload test_klp_unhooked
)");
    h.t.send("quit\n");
    EXPECT_EQ(h.t.wait_exit(), 0) << target_state(h.t);
}

}  // namespace
