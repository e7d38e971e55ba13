// The kernel's tools/testing/selftests/livepatch/test-callbacks.sh, ported (reference:
// kernel-livepatch.md 5 and 8.4): the same eleven cases and the same expected transcripts, in
// graft's words. As in the kernel's script, "$LP", "$LP2", "$T" and "$B" in an expected
// transcript stand for the patch and target names below.
//
// The targets are shared objects klp_host loads and unloads (test_klp_callbacks_*.c in this folder);
// the patches are test_klp_callbacks_demo*.c. Module parameters become environment
// variables of the host: PRE_PATCH_RET (pre_patch_ret of the demo patch, read at every
// pre_patch call) and BLOCK_TRANSITION (block_transition of the busy target, read when it loads).
#include <gtest/gtest.h>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

const std::string kLp = "test_klp_callbacks_demo";
const std::string kLp2 = "test_klp_callbacks_demo2";
const std::string kTarget = "test_klp_callbacks_mod";
const std::string kBusy = "test_klp_callbacks_busy";

// The kernel script's variable expansion: "$LP2" before "$LP", which is its prefix.
std::string expand(std::string text) {
    const std::pair<std::string, std::string> vars[] = {
        {"$LP2", kLp2}, {"$LP", kLp}, {"$T", kTarget}, {"$B", kBusy}};
    for (auto &[var, value] : vars)
        for (size_t at = text.find(var); at != std::string::npos; at = text.find(var, at + value.size()))
            text.replace(at, var.size(), value);
    return text;
}

void check(KlpSession &s, const std::string &expected) {
    s.check(expand(expected));
}

class KlpCallbacks : public ::testing::TestWithParam<bool> {};  // true: klp_host attached

// 1. target module before livepatch: pre/post-patch callbacks run for every loaded object (main
// and $T) around the patching transition, pre/post-unpatch callbacks around the unpatching one.
TEST_P(KlpCallbacks, TargetModuleBeforeLivepatch) {
    KlpSession s(GetParam());
    s.load_mod(kTarget);
    s.load_lp(kLp);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    s.unload_mod(kTarget);
    check(s, R"(
% dlopen $T.so
$T: $T_init
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
$LP: post_patch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': patching complete
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
$LP: pre_unpatch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': unpatching complete
% graft unload $LP
% dlclose $T.so
$T: $T_exit
)");
}

// 2. module_coming notifier: the patch is enabled for main only; when $T loads, its own
// pre/post-patch callbacks run (state COMING), before its constructor; on disable, both objects
// get their unpatch callbacks.
TEST_P(KlpCallbacks, ModuleComingNotifier) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.load_mod(kTarget);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    s.unload_mod(kTarget);
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% dlopen $T.so
graft: applying patch '$LP' to loading object '$T'
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$LP: post_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$T: $T_init
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
$LP: pre_unpatch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': unpatching complete
% graft unload $LP
% dlclose $T.so
$T: $T_exit
)");
}

// 3. module_going notifier: unloading $T reverts the patch from $T alone (its unpatch callbacks,
// state GOING, after its destructor); the disable then runs main's only.
TEST_P(KlpCallbacks, ModuleGoingNotifier) {
    KlpSession s(GetParam());
    s.load_mod(kTarget);
    s.load_lp(kLp);
    s.unload_mod(kTarget);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    check(s, R"(
% dlopen $T.so
$T: $T_init
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
$LP: post_patch_callback: $T -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': patching complete
% dlclose $T.so
$T: $T_exit
$LP: pre_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
graft: reverting patch '$LP' on unloading object '$T'
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
graft: '$LP': unpatching complete
% graft unload $LP
)");
}

// 4. module_coming and module_going notifiers: $T comes and goes under the enabled patch.
TEST_P(KlpCallbacks, ModuleComingAndGoingNotifiers) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.load_mod(kTarget);
    s.unload_mod(kTarget);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% dlopen $T.so
graft: applying patch '$LP' to loading object '$T'
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$LP: post_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$T: $T_init
% dlclose $T.so
$T: $T_exit
$LP: pre_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
graft: reverting patch '$LP' on unloading object '$T'
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
graft: '$LP': unpatching complete
% graft unload $LP
)");
}

// 5. target module not present: only main's callbacks run.
TEST_P(KlpCallbacks, TargetModuleNotPresent) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
graft: '$LP': unpatching complete
% graft unload $LP
)");
}

// 6. pre-patch callback -ENODEV: main's pre_patch fails, so the enable is canceled before $T is
// reached, no post_unpatch runs (its pre_patch failed), and `graft load` fails, as insmod does.
// The last line before "% dlclose" is `graft load`'s error, which carries pre_patch's own -ENODEV,
// as the kernel's insmod error does.
TEST_P(KlpCallbacks, PrePatchCallbackENODEV) {
    KlpSession s(GetParam());
    s.load_mod(kTarget);
    s.set_env("PRE_PATCH_RET", "-19");
    s.load_failing_lp(kLp);
    EXPECT_TRUE(status(s.pid())["patches"].empty()) << "a failed load must leave no patch behind";
    s.unload_mod(kTarget);
    check(s, R"(
% dlopen $T.so
$T: $T_init
% setenv PRE_PATCH_RET -19
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: pre-patch callback failed for object 'main'
graft: failed to enable patch '$LP'
graft: '$LP': canceling patching transition, going to unpatch
graft: '$LP': completing unpatching transition
graft: '$LP': unpatching complete
% graft: load: patch '$LP': pre-patch callback failed for object 'main': No such device
% dlclose $T.so
$T: $T_exit
)");
}

// 7. module_coming + pre-patch callback -ENODEV: $T's pre_patch fails as it loads, so the patch
// is refused for $T and no other callback ever runs for it. Unlike the kernel, graft cannot make
// the dynamic linker refuse the object: dlopen succeeds, $T keeps its original code, stays out of
// the patch (no "reverting" nor unpatch callbacks for it later) and its constructor still runs,
// after the refusal line; there is no insmod-style error line.
TEST_P(KlpCallbacks, ModuleComingPrePatchCallbackENODEV) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.set_env("PRE_PATCH_RET", "-19");
    s.load_mod(kTarget);
    auto o = object_of(status(s.pid()), kLp, kTarget);
    EXPECT_FALSE(o.is_null() || o["loaded"] != false || o["patched"] != false)
        << "the refused object must not be bound to the patch: " << o.dump();
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% setenv PRE_PATCH_RET -19
% dlopen $T.so
graft: applying patch '$LP' to loading object '$T'
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
graft: pre-patch callback failed for object '$T'
graft: patch '$LP' failed for object '$T', refusing to load object '$T'
$T: $T_init
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
graft: '$LP': unpatching complete
% graft unload $LP
)");
}

// 8. multiple target modules: $B's work thread ran and left before the patch loads, so the
// transition completes at once; $T comes and goes meanwhile.
TEST_P(KlpCallbacks, MultipleTargetModules) {
    KlpSession s(GetParam());
    s.set_env("BLOCK_TRANSITION", "N");
    s.load_mod(kBusy);
    s.load_lp(kLp);
    s.load_mod(kTarget);
    s.unload_mod(kTarget);
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    s.unload_mod(kBusy);
    check(s, R"(
% setenv BLOCK_TRANSITION N
% dlopen $B.so
$B: $B_init
$B: busymod_work_func enter
$B: busymod_work_func exit
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
$LP: pre_patch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
$LP: post_patch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': patching complete
% dlopen $T.so
graft: applying patch '$LP' to loading object '$T'
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$LP: post_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$T: $T_init
% dlclose $T.so
$T: $T_exit
$LP: pre_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
graft: reverting patch '$LP' on unloading object '$T'
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
$LP: pre_unpatch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
$LP: post_unpatch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': unpatching complete
% graft unload $LP
% dlclose $B.so
$B: $B_exit
)");
}

// 9. busy target module: $B's work thread sleeps inside busymod_work_func(), which the patch
// replaces, so the patching transition cannot complete. While it is stuck, $T comes (pre_patch
// only: post_patch waits for the end of the transition) and goes (no pre_unpatch: its
// post_patch never ran). The disable reverses the transition: no pre_unpatch at all, the
// post_unpatch callbacks of the objects whose pre_patch ran.
TEST_P(KlpCallbacks, BusyTargetModule) {
    KlpSession s(GetParam());
    s.set_env("BLOCK_TRANSITION", "Y");
    s.load_mod(kBusy);
    s.load_lp_nowait(kLp);
    s.wait_in_transition(kLp);
    s.load_mod(kTarget);
    s.unload_mod(kTarget);
    // Still stuck, and on the work thread, which sleeps in busymod_work_func(). (The report is
    // the last try's: other threads may show as pending until a try has seen them, so wait for
    // the work thread to be named; the transition itself cannot end while it sleeps there.)
    nlohmann::json tr;
    bool busy_pending = wait_status(s.pid(), [&](const nlohmann::json &st) {
        tr = st["transition"];
        if (!tr.is_object() || tr["patch"] != kLp) return false;
        for (auto &t : tr["pending"])
            if (t.value("reason", "").find("busymod_work_func") != std::string::npos) return true;
        return false;
    });
    EXPECT_TRUE(busy_pending) << tr.dump();
    s.disable_lp(kLp);
    s.unload_lp(kLp);
    s.unload_mod(kBusy);
    check(s, R"(
% setenv BLOCK_TRANSITION Y
% dlopen $B.so
$B: $B_init
$B: busymod_work_func enter
% graft load --no-wait $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
$LP: pre_patch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': starting patching transition
% dlopen $T.so
graft: applying patch '$LP' to loading object '$T'
$LP: pre_patch_callback: $T -> [GRAFT_OBJECT_COMING] Full formed, running constructors
$T: $T_init
% dlclose $T.so
$T: $T_exit
graft: reverting patch '$LP' on unloading object '$T'
$LP: post_unpatch_callback: $T -> [GRAFT_OBJECT_GOING] Going away
% graft disable $LP
graft: '$LP': reversing transition from patching to unpatching
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
$LP: post_unpatch_callback: $B -> [GRAFT_OBJECT_LIVE] Normal state
graft: '$LP': unpatching complete
% graft unload $LP
% dlclose $B.so
$B: busymod_work_func exit
$B: $B_exit
)");
}

// 10. multiple livepatches: each patch's callbacks run for its own transitions.
TEST_P(KlpCallbacks, MultipleLivepatches) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.load_lp(kLp2);
    s.disable_lp(kLp2);
    s.disable_lp(kLp);
    s.unload_lp(kLp2);
    s.unload_lp(kLp);
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% graft load $LP2.so
graft: enabling patch '$LP2'
graft: '$LP2': initializing patching transition
$LP2: pre_patch_callback: main
graft: '$LP2': starting patching transition
graft: '$LP2': completing patching transition
$LP2: post_patch_callback: main
graft: '$LP2': patching complete
% graft disable $LP2
graft: '$LP2': initializing unpatching transition
$LP2: pre_unpatch_callback: main
graft: '$LP2': starting unpatching transition
graft: '$LP2': completing unpatching transition
$LP2: post_unpatch_callback: main
graft: '$LP2': unpatching complete
% graft disable $LP
graft: '$LP': initializing unpatching transition
$LP: pre_unpatch_callback: main
graft: '$LP': starting unpatching transition
graft: '$LP': completing unpatching transition
$LP: post_unpatch_callback: main
graft: '$LP': unpatching complete
% graft unload $LP2
% graft unload $LP
)");
}

// 11. atomic replace: $LP2 (replace) takes $LP's place without any of $LP's unpatch callbacks;
// disabling $LP2 runs $LP2's; $LP, replaced, unloads silently. The replace build of $LP2 is
// test_klp_callbacks_demo2_replace.so (the kernel's replace=1 parameter).
TEST_P(KlpCallbacks, AtomicReplace) {
    KlpSession s(GetParam());
    s.load_lp(kLp);
    s.load_lp(kLp2 + "_replace");
    EXPECT_EQ(patch_names(s.pid()), std::vector<std::string>{kLp2})
        << "the replaced patch must leave the list";
    s.disable_lp(kLp2);
    s.unload_lp(kLp2);
    s.unload_lp(kLp);
    EXPECT_TRUE(patch_names(s.pid()).empty());
    check(s, R"(
% graft load $LP.so
graft: enabling patch '$LP'
graft: '$LP': initializing patching transition
$LP: pre_patch_callback: main
graft: '$LP': starting patching transition
graft: '$LP': completing patching transition
$LP: post_patch_callback: main
graft: '$LP': patching complete
% graft load $LP2_replace.so
graft: enabling patch '$LP2'
graft: '$LP2': initializing patching transition
$LP2: pre_patch_callback: main
graft: '$LP2': starting patching transition
graft: '$LP2': completing patching transition
$LP2: post_patch_callback: main
graft: '$LP2': patching complete
% graft disable $LP2
graft: '$LP2': initializing unpatching transition
$LP2: pre_unpatch_callback: main
graft: '$LP2': starting unpatching transition
graft: '$LP2': completing unpatching transition
$LP2: post_unpatch_callback: main
graft: '$LP2': unpatching complete
% graft unload $LP2
% graft unload $LP
)");
}

}  // namespace

// Every case twice: under `graft run` (the audit module reports the targets coming and going)
// and on a klp_host started without graft and attached to (the loader's debugger hook and the
// targets' watched destructors report them): the same transcript.
INSTANTIATE_TEST_SUITE_P(, KlpCallbacks, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) {
                             return i.param ? "Attached" : "GraftRun";
                         });
