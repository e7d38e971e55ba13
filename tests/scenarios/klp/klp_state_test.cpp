// The kernel's tools/testing/selftests/livepatch/test-state.sh, ported (reference:
// kernel-livepatch.md 8.6 and 4.3): system states carried from one cumulative patch to the
// next. test_klp_state declares state 1 version 1, test_klp_state2 and test_klp_state3 (one
// source) version 2 and take the state over with graft_get_prev_state(); all are replace
// patches. The kernel's console_loglevel is a variable of vmlinux; here it is a static variable
// of the target library test_klp_console, loaded first (its "% dlopen" line opens every
// transcript) and reached by the patches through GRAFT_REF.
#include <gtest/gtest.h>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

const std::string kDefault = "console_loglevel=7";
const std::string kMotormouth = "console_loglevel=15";

std::string loglevel(KlpSession &s) {
    std::string a = ask(s.host(), "call test_klp_console get_console_loglevel", "call");
    return a.rfind("ok call: ", 0) == 0 ? a.substr(9) : a;
}

void start(KlpSession &s) {
    s.load_mod("test_klp_console");
    EXPECT_EQ(loglevel(s), kDefault);
}

// The enable and disable of one patch that owns the state alone (allocate/fix, restore/free).
std::string enable_alone(const std::string &p) {
    return "% graft load " + p + ".so\n" + "graft: enabling patch '" + p + "'\n" + "graft: '" + p +
           "': initializing patching transition\n" + p + ": pre_patch_callback: main\n" + p +
           ": allocate_loglevel_state: allocating space to store console_loglevel\n" + "graft: '" + p +
           "': starting patching transition\n" + "graft: '" + p + "': completing patching transition\n" + p +
           ": post_patch_callback: main\n" + p + ": fix_console_loglevel: fixing console_loglevel\n" +
           "graft: '" + p + "': patching complete\n";
}

std::string enable_taking_over(const std::string &p) {
    return "% graft load " + p + ".so\n" + "graft: enabling patch '" + p + "'\n" + "graft: '" + p +
           "': initializing patching transition\n" + p + ": pre_patch_callback: main\n" + p +
           ": allocate_loglevel_state: space to store console_loglevel already allocated\n" + "graft: '" + p +
           "': starting patching transition\n" + "graft: '" + p + "': completing patching transition\n" + p +
           ": post_patch_callback: main\n" + p +
           ": fix_console_loglevel: taking over the console_loglevel change\n" + "graft: '" + p +
           "': patching complete\n";
}

std::string disable_alone(const std::string &p) {
    return "% graft disable " + p + "\n" + "graft: '" + p + "': initializing unpatching transition\n" + p +
           ": pre_unpatch_callback: main\n" + p + ": restore_console_loglevel: restoring console_loglevel\n" +
           "graft: '" + p + "': starting unpatching transition\n" + "graft: '" + p +
           "': completing unpatching transition\n" + p + ": post_unpatch_callback: main\n" + p +
           ": free_loglevel_state: freeing space for the stored console_loglevel\n" + "graft: '" + p +
           "': unpatching complete\n";
}

const std::string kOpen = "% dlopen test_klp_console.so\n";

// 1. system state modification
TEST(KlpState, SystemStateModification) {
    KlpSession s;
    start(s);
    s.load_lp("test_klp_state");
    EXPECT_EQ(loglevel(s), kMotormouth);
    s.disable_lp("test_klp_state");
    EXPECT_EQ(loglevel(s), kDefault);
    s.unload_lp("test_klp_state");
    s.check(kOpen + enable_alone("test_klp_state") + disable_alone("test_klp_state") +
            "% graft unload test_klp_state\n");
}

// 2. taking over system state modification
TEST(KlpState, TakingOverSystemStateModification) {
    KlpSession s;
    start(s);
    s.load_lp("test_klp_state");
    s.load_lp("test_klp_state2");
    // test_klp_state2 took the change over: the level stays raised, test_klp_state's
    // restore never ran (a replaced patch's callbacks do not run).
    EXPECT_EQ(loglevel(s), kMotormouth);
    s.unload_lp("test_klp_state");
    s.disable_lp("test_klp_state2");
    EXPECT_EQ(loglevel(s), kDefault);
    s.unload_lp("test_klp_state2");
    s.check(kOpen + enable_alone("test_klp_state") + enable_taking_over("test_klp_state2") +
            "% graft unload test_klp_state\n" + disable_alone("test_klp_state2") +
            "% graft unload test_klp_state2\n");
}

// 3. compatible cumulative livepatches
TEST(KlpState, CompatibleCumulativeLivepatches) {
    KlpSession s;
    start(s);
    s.load_lp("test_klp_state2");
    s.load_lp("test_klp_state3");
    s.unload_lp("test_klp_state2");
    // A version 2 patch replacing a version 2 patch is allowed.
    s.load_lp("test_klp_state2");
    EXPECT_EQ(loglevel(s), kMotormouth);
    s.disable_lp("test_klp_state2");
    EXPECT_EQ(loglevel(s), kDefault);
    s.unload_lp("test_klp_state2");
    s.unload_lp("test_klp_state3");
    s.check(kOpen + enable_alone("test_klp_state2") + enable_taking_over("test_klp_state3") +
            "% graft unload test_klp_state2\n" + enable_taking_over("test_klp_state2") +
            disable_alone("test_klp_state2") + "% graft unload test_klp_state2\n" +
            "% graft unload test_klp_state3\n");
}

// 4. incompatible cumulative livepatches: a version 1 patch cannot replace a version 2 state.
// The compatibility check comes first, so nothing else is logged (no "enabling" line); graft
// load's error line stands where the kernel's selftest logs insmod's.
TEST(KlpState, IncompatibleCumulativeLivepatches) {
    KlpSession s;
    start(s);
    s.load_lp("test_klp_state2");
    s.load_failing_lp("test_klp_state");
    EXPECT_EQ(loglevel(s), kMotormouth);
    s.disable_lp("test_klp_state2");
    EXPECT_EQ(loglevel(s), kDefault);
    s.unload_lp("test_klp_state2");
    s.check(kOpen + enable_alone("test_klp_state2") + "% graft load test_klp_state.so\n" +
            "graft: Livepatch patch (test_klp_state) is not compatible with the already installed "
            "livepatches.\n" +
            "% graft: load: patch 'test_klp_state' is not compatible with the already installed patches: "
            "Invalid argument\n" +
            disable_alone("test_klp_state2") + "% graft unload test_klp_state2\n");
}

}  // namespace
