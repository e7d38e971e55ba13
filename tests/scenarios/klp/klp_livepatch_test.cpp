// The kernel's tools/testing/selftests/livepatch/test-livepatch.sh, ported (reference:
// kernel-livepatch.md 8.3): the same cases and the same expected transcripts, in graft's words.
#include <gtest/gtest.h>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

const std::string kPatched = "test_klp_livepatch: this has been live patched";
const std::string kReplacePatched = "test_klp_atomic_replace: this has been live patched";
const std::string kTargetOriginal = "test_klp_mod_target: original output";
const std::string kTargetPatched = "test_klp_mod_patch: this has been live patched";

// The kernel's `grep 'live patched' /proc/cmdline > /dev/kmsg` and the same for /proc/meminfo:
// what cmdline_proc_show() and meminfo_proc_show() return goes into the transcript when it says
// "live patched", so that check() also shows which patch answered at each point.
void grep_live_patched(KlpSession &s) {
    for (const std::string &out : {s.cmdline(), s.meminfo()})
        if (out.find("live patched") != std::string::npos) {
            std::string a = ask(s.host(), "log " + out, "ok log");
            EXPECT_EQ(a, "ok log") << target_state(s.host());
        }
}

// The kernel's `cat /proc/test_klp_mod_target`: what test_klp_mod_target_show() of the loaded
// test_klp_mod_target.so returns.
std::string mod_target_show(KlpSession &s) {
    std::string a = ask(s.host(), "call test_klp_mod_target test_klp_mod_target_show", "call");
    return a.rfind("ok call: ", 0) == 0 ? a.substr(9) : a;
}

class KlpLivepatch : public ::testing::TestWithParam<bool> {};  // true: klp_host attached

// Every case twice: under `graft run` and on a klp_host started without graft and attached to.
INSTANTIATE_TEST_SUITE_P(, KlpLivepatch, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) {
                             return i.param ? "Attached" : "GraftRun";
                         });

// 1. basic function patching
TEST_P(KlpLivepatch, BasicFunctionPatching) {
    KlpSession s(GetParam());
    std::string original = s.cmdline();
    s.load_lp("test_klp_livepatch");
    EXPECT_EQ(s.cmdline(), kPatched);
    s.disable_lp("test_klp_livepatch");
    s.unload_lp("test_klp_livepatch");
    EXPECT_EQ(s.cmdline(), original);
    s.check(R"(
% graft load test_klp_livepatch.so
graft: enabling patch 'test_klp_livepatch'
graft: 'test_klp_livepatch': initializing patching transition
graft: 'test_klp_livepatch': starting patching transition
graft: 'test_klp_livepatch': completing patching transition
graft: 'test_klp_livepatch': patching complete
% graft disable test_klp_livepatch
graft: 'test_klp_livepatch': initializing unpatching transition
graft: 'test_klp_livepatch': starting unpatching transition
graft: 'test_klp_livepatch': completing unpatching transition
graft: 'test_klp_livepatch': unpatching complete
% graft unload test_klp_livepatch
)");
}

// 2. multiple livepatches: test_klp_livepatch (cmdline) and test_klp_atomic_replace without
// replace (meminfo) stack; each leaves with its own disable.
TEST_P(KlpLivepatch, MultipleLivepatches) {
    KlpSession s(GetParam());
    std::string cmdline = s.cmdline(), meminfo = s.meminfo();
    s.load_lp("test_klp_livepatch");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), kPatched);
    EXPECT_EQ(s.meminfo(), meminfo);
    s.load_lp("test_klp_atomic_replace");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), kPatched);
    EXPECT_EQ(s.meminfo(), kReplacePatched);
    s.disable_lp("test_klp_atomic_replace");
    s.unload_lp("test_klp_atomic_replace");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), kPatched);
    EXPECT_EQ(s.meminfo(), meminfo);
    s.disable_lp("test_klp_livepatch");
    s.unload_lp("test_klp_livepatch");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), cmdline);
    EXPECT_EQ(s.meminfo(), meminfo);
    s.check(R"(
% graft load test_klp_livepatch.so
graft: enabling patch 'test_klp_livepatch'
graft: 'test_klp_livepatch': initializing patching transition
graft: 'test_klp_livepatch': starting patching transition
graft: 'test_klp_livepatch': completing patching transition
graft: 'test_klp_livepatch': patching complete
test_klp_livepatch: this has been live patched
% graft load test_klp_atomic_replace.so
graft: enabling patch 'test_klp_atomic_replace'
graft: 'test_klp_atomic_replace': initializing patching transition
graft: 'test_klp_atomic_replace': starting patching transition
graft: 'test_klp_atomic_replace': completing patching transition
graft: 'test_klp_atomic_replace': patching complete
test_klp_livepatch: this has been live patched
test_klp_atomic_replace: this has been live patched
% graft disable test_klp_atomic_replace
graft: 'test_klp_atomic_replace': initializing unpatching transition
graft: 'test_klp_atomic_replace': starting unpatching transition
graft: 'test_klp_atomic_replace': completing unpatching transition
graft: 'test_klp_atomic_replace': unpatching complete
% graft unload test_klp_atomic_replace
test_klp_livepatch: this has been live patched
% graft disable test_klp_livepatch
graft: 'test_klp_livepatch': initializing unpatching transition
graft: 'test_klp_livepatch': starting unpatching transition
graft: 'test_klp_livepatch': completing unpatching transition
graft: 'test_klp_livepatch': unpatching complete
% graft unload test_klp_livepatch
)");
}

// 3. atomic replace livepatch: three patches, then test_klp_atomic_replace with replace
// (test_klp_atomic_replace_replace.so, the kernel's replace=1) takes the place of all three:
// they leave the list without any of their callbacks (test_klp_callbacks_demo's), cmdline
// returns to its original code, and unloading them prints nothing. The kernel's second patch
// (test_klp_syscall, which patches getpid) has no counterpart in klp_host; test_klp_mod_patch
// plays it, its object not loaded.
TEST_P(KlpLivepatch, AtomicReplaceLivepatch) {
    KlpSession s(GetParam());
    std::string cmdline = s.cmdline(), meminfo = s.meminfo();
    s.load_lp("test_klp_livepatch");
    grep_live_patched(s);
    s.load_lp("test_klp_mod_patch");
    s.load_lp("test_klp_callbacks_demo");
    EXPECT_EQ(patch_names(s.pid()), (std::vector<std::string>{"test_klp_livepatch", "test_klp_mod_patch",
                                                              "test_klp_callbacks_demo"}));
    s.load_lp("test_klp_atomic_replace_replace");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), cmdline);
    EXPECT_EQ(s.meminfo(), kReplacePatched);
    EXPECT_TRUE(wait_status(s.pid(), [](const nlohmann::json &st) { return st["patches"].size() == 1; }))
        << status(s.pid()).dump(2);
    EXPECT_EQ(patch_names(s.pid()), std::vector<std::string>{"test_klp_atomic_replace"});
    s.unload_lp("test_klp_callbacks_demo");
    s.unload_lp("test_klp_mod_patch");
    s.unload_lp("test_klp_livepatch");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), cmdline);
    EXPECT_EQ(s.meminfo(), kReplacePatched);
    s.disable_lp("test_klp_atomic_replace");
    s.unload_lp("test_klp_atomic_replace");
    grep_live_patched(s);
    EXPECT_EQ(s.cmdline(), cmdline);
    EXPECT_EQ(s.meminfo(), meminfo);
    s.check(R"(
% graft load test_klp_livepatch.so
graft: enabling patch 'test_klp_livepatch'
graft: 'test_klp_livepatch': initializing patching transition
graft: 'test_klp_livepatch': starting patching transition
graft: 'test_klp_livepatch': completing patching transition
graft: 'test_klp_livepatch': patching complete
test_klp_livepatch: this has been live patched
% graft load test_klp_mod_patch.so
graft: enabling patch 'test_klp_mod_patch'
graft: 'test_klp_mod_patch': initializing patching transition
graft: 'test_klp_mod_patch': starting patching transition
graft: 'test_klp_mod_patch': completing patching transition
graft: 'test_klp_mod_patch': patching complete
% graft load test_klp_callbacks_demo.so
graft: enabling patch 'test_klp_callbacks_demo'
graft: 'test_klp_callbacks_demo': initializing patching transition
test_klp_callbacks_demo: pre_patch_callback: main
graft: 'test_klp_callbacks_demo': starting patching transition
graft: 'test_klp_callbacks_demo': completing patching transition
test_klp_callbacks_demo: post_patch_callback: main
graft: 'test_klp_callbacks_demo': patching complete
% graft load test_klp_atomic_replace_replace.so
graft: enabling patch 'test_klp_atomic_replace'
graft: 'test_klp_atomic_replace': initializing patching transition
graft: 'test_klp_atomic_replace': starting patching transition
graft: 'test_klp_atomic_replace': completing patching transition
graft: 'test_klp_atomic_replace': patching complete
test_klp_atomic_replace: this has been live patched
% graft unload test_klp_callbacks_demo
% graft unload test_klp_mod_patch
% graft unload test_klp_livepatch
test_klp_atomic_replace: this has been live patched
% graft disable test_klp_atomic_replace
graft: 'test_klp_atomic_replace': initializing unpatching transition
graft: 'test_klp_atomic_replace': starting unpatching transition
graft: 'test_klp_atomic_replace': completing unpatching transition
graft: 'test_klp_atomic_replace': unpatching complete
% graft unload test_klp_atomic_replace
)");
}

// 4. module function patching: the target object is loaded before the patch.
TEST_P(KlpLivepatch, ModuleFunctionPatching) {
    KlpSession s(GetParam());
    s.load_mod("test_klp_mod_target");
    EXPECT_EQ(mod_target_show(s), kTargetOriginal);
    s.load_lp("test_klp_mod_patch");
    EXPECT_EQ(mod_target_show(s), kTargetPatched);
    s.disable_lp("test_klp_mod_patch");
    s.unload_lp("test_klp_mod_patch");
    EXPECT_EQ(mod_target_show(s), kTargetOriginal);
    s.unload_mod("test_klp_mod_target");
    s.check(R"(
% dlopen test_klp_mod_target.so
test_klp_mod_target: test_klp_mod_target_init
% graft load test_klp_mod_patch.so
graft: enabling patch 'test_klp_mod_patch'
graft: 'test_klp_mod_patch': initializing patching transition
graft: 'test_klp_mod_patch': starting patching transition
graft: 'test_klp_mod_patch': completing patching transition
graft: 'test_klp_mod_patch': patching complete
% graft disable test_klp_mod_patch
graft: 'test_klp_mod_patch': initializing unpatching transition
graft: 'test_klp_mod_patch': starting unpatching transition
graft: 'test_klp_mod_patch': completing unpatching transition
graft: 'test_klp_mod_patch': unpatching complete
% graft unload test_klp_mod_patch
% dlclose test_klp_mod_target.so
test_klp_mod_target: test_klp_mod_target_exit
)");
}

// 5. module function patching (livepatch first): the patch is applied to the target object as
// it loads, before its constructor runs.
TEST_P(KlpLivepatch, ModuleFunctionPatchingLivepatchFirst) {
    KlpSession s(GetParam());
    s.load_lp("test_klp_mod_patch");
    s.load_mod("test_klp_mod_target");
    EXPECT_EQ(mod_target_show(s), kTargetPatched);
    s.disable_lp("test_klp_mod_patch");
    s.unload_lp("test_klp_mod_patch");
    EXPECT_EQ(mod_target_show(s), kTargetOriginal);
    s.unload_mod("test_klp_mod_target");
    s.check(R"(
% graft load test_klp_mod_patch.so
graft: enabling patch 'test_klp_mod_patch'
graft: 'test_klp_mod_patch': initializing patching transition
graft: 'test_klp_mod_patch': starting patching transition
graft: 'test_klp_mod_patch': completing patching transition
graft: 'test_klp_mod_patch': patching complete
% dlopen test_klp_mod_target.so
graft: applying patch 'test_klp_mod_patch' to loading object 'test_klp_mod_target'
test_klp_mod_target: test_klp_mod_target_init
% graft disable test_klp_mod_patch
graft: 'test_klp_mod_patch': initializing unpatching transition
graft: 'test_klp_mod_patch': starting unpatching transition
graft: 'test_klp_mod_patch': completing unpatching transition
graft: 'test_klp_mod_patch': unpatching complete
% graft unload test_klp_mod_patch
% dlclose test_klp_mod_target.so
test_klp_mod_target: test_klp_mod_target_exit
)");
}

}  // namespace
