// The kernel's tools/testing/selftests/livepatch/test-shadow-vars.sh, ported (reference:
// kernel-livepatch.md 8.5 and 6): the target library test_klp_shadow_vars exercises the shadow
// variable API from its constructor exactly as the kernel's module does from its init, and the
// transcript must match the kernel's line for line (klp_ -> graft_, no gfp flags: graft's API
// has none). Then the cases the kernel's selftest does not log: a duplicate alloc, a failing
// constructor, and shadow variables outliving the patch that allocated them.
#include <gtest/gtest.h>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

std::string call(KlpSession &s, const std::string &func) {
    s.mark("call test_klp_shadow_api " + func);
    std::string a = ask(s.host(), "call test_klp_shadow_api " + func, "call");
    return a.rfind("ok call: ", 0) == 0 ? a.substr(9) : a;
}

// The value of `key=` in a "k=v k=v" answer.
std::string field(const std::string &answer, const std::string &key) {
    size_t at = answer.find(key + "=");
    if (at == std::string::npos) return "<no " + key + " in '" + answer + "'>";
    at += key.size() + 1;
    return answer.substr(at, answer.find(' ', at) - at);
}

// basic shadow variable API
TEST(KlpShadowVars, BasicShadowVariableApi) {
    KlpSession s;
    s.load_mod("test_klp_shadow_vars");
    s.unload_mod("test_klp_shadow_vars");
    s.check(R"(
% dlopen test_klp_shadow_vars.so
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1234) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: shadow_ctor: PTR3 -> PTR2
test_klp_shadow_vars: graft_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR2 = PTR3
test_klp_shadow_vars: shadow_ctor: PTR6 -> PTR5
test_klp_shadow_vars: graft_shadow_alloc(obj=PTR1, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR5 = PTR6
test_klp_shadow_vars: shadow_ctor: PTR8 -> PTR7
test_klp_shadow_vars: graft_shadow_alloc(obj=PTR9, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR7 = PTR8
test_klp_shadow_vars: shadow_ctor: PTR11 -> PTR10
test_klp_shadow_vars: graft_shadow_alloc(obj=PTR9, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR10 = PTR11
test_klp_shadow_vars: shadow_ctor: PTR13 -> PTR12
test_klp_shadow_vars: graft_shadow_get_or_alloc(obj=PTR14, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR12 = PTR13
test_klp_shadow_vars: shadow_ctor: PTR16 -> PTR15
test_klp_shadow_vars: graft_shadow_alloc(obj=PTR14, id=0x1235, size=8), ctor=PTR4, ctor_data=PTR15 = PTR16
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1234) = PTR3
test_klp_shadow_vars:   got expected PTR3 -> PTR2 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1235) = PTR6
test_klp_shadow_vars:   got expected PTR6 -> PTR5 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR9, id=0x1234) = PTR8
test_klp_shadow_vars:   got expected PTR8 -> PTR7 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR9, id=0x1235) = PTR11
test_klp_shadow_vars:   got expected PTR11 -> PTR10 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR14, id=0x1234) = PTR13
test_klp_shadow_vars:   got expected PTR13 -> PTR12 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR14, id=0x1235) = PTR16
test_klp_shadow_vars:   got expected PTR16 -> PTR15 result
test_klp_shadow_vars: graft_shadow_get_or_alloc(obj=PTR1, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR2 = PTR3
test_klp_shadow_vars:   got expected PTR3 -> PTR2 result
test_klp_shadow_vars: graft_shadow_get_or_alloc(obj=PTR9, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR7 = PTR8
test_klp_shadow_vars:   got expected PTR8 -> PTR7 result
test_klp_shadow_vars: graft_shadow_get_or_alloc(obj=PTR14, id=0x1234, size=8), ctor=PTR4, ctor_data=PTR12 = PTR13
test_klp_shadow_vars:   got expected PTR13 -> PTR12 result
test_klp_shadow_vars: shadow_dtor(obj=PTR1, shadow_data=PTR3)
test_klp_shadow_vars: graft_shadow_free(obj=PTR1, id=0x1234, dtor=PTR17)
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1234) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: shadow_dtor(obj=PTR9, shadow_data=PTR8)
test_klp_shadow_vars: graft_shadow_free(obj=PTR9, id=0x1234, dtor=PTR17)
test_klp_shadow_vars: graft_shadow_get(obj=PTR9, id=0x1234) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: shadow_dtor(obj=PTR14, shadow_data=PTR13)
test_klp_shadow_vars: graft_shadow_free(obj=PTR14, id=0x1234, dtor=PTR17)
test_klp_shadow_vars: graft_shadow_get(obj=PTR14, id=0x1234) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1235) = PTR6
test_klp_shadow_vars:   got expected PTR6 -> PTR5 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR9, id=0x1235) = PTR11
test_klp_shadow_vars:   got expected PTR11 -> PTR10 result
test_klp_shadow_vars: graft_shadow_get(obj=PTR14, id=0x1235) = PTR16
test_klp_shadow_vars:   got expected PTR16 -> PTR15 result
test_klp_shadow_vars: graft_shadow_free_all(id=0x1235, dtor=PTR0)
test_klp_shadow_vars: graft_shadow_get(obj=PTR1, id=0x1235) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: graft_shadow_get(obj=PTR9, id=0x1235) = PTR0
test_klp_shadow_vars:   got expected NULL result
test_klp_shadow_vars: graft_shadow_get(obj=PTR14, id=0x1235) = PTR0
test_klp_shadow_vars:   got expected NULL result
% dlclose test_klp_shadow_vars.so
)");
}

// klp_shadow_alloc() of an existing <obj, id> WARNs "Duplicate shadow variable" and returns
// NULL; the existing variable stays as it was and its constructor does not run again.
TEST(KlpShadowVars, DuplicateAllocFails) {
    KlpSession s;
    s.load_mod("test_klp_shadow_api");
    std::string r = call(s, "duplicate_alloc");
    EXPECT_EQ(field(r, "first"), "data") << r;
    EXPECT_EQ(field(r, "second"), "NULL") << r;
    EXPECT_EQ(field(r, "value"), "1") << r;
    s.check(
        "% dlopen test_klp_shadow_api.so\n% call test_klp_shadow_api duplicate_alloc\n"
        "graft: Duplicate shadow variable <" +
        field(r, "obj") + ", 2a>\n");
}

// A constructor that fails: "Failed to construct shadow variable <obj, id> (err)", NULL, and
// nothing inserted (a later get finds nothing, a later get_or_alloc constructs afresh).
TEST(KlpShadowVars, FailingConstructorAllocatesNothing) {
    KlpSession s;
    s.load_mod("test_klp_shadow_api");
    std::string r = call(s, "failing_ctor");
    EXPECT_EQ(field(r, "alloc"), "NULL") << r;
    EXPECT_EQ(field(r, "get"), "NULL") << r;
    EXPECT_EQ(field(r, "get_or_alloc"), "NULL") << r;
    EXPECT_EQ(field(r, "ctor_calls"), "2") << r;
    EXPECT_EQ(field(r, "later"), "3") << r;
    std::string obj = field(r, "obj");
    s.check(
        "% dlopen test_klp_shadow_api.so\n% call test_klp_shadow_api failing_ctor\n"
        "graft: Failed to construct shadow variable <" +
        obj + ", 2b> (-12)\ngraft: Failed to construct shadow variable <" + obj + ", 2b> (-12)\n");
}

// Shadow variables are global, not per patch: one allocated by a patch's post_patch callback is
// still there after that patch was disabled and unloaded, until its owner frees it.
TEST(KlpShadowVars, ShadowVariablesSurvivePatchDisable) {
    KlpSession s;
    s.load_mod("test_klp_shadow_api");
    EXPECT_EQ(call(s, "read_kept"), "none");
    s.load_lp("test_klp_shadow_keep");
    EXPECT_EQ(call(s, "read_kept"), "kept by test_klp_shadow_keep");
    s.disable_lp("test_klp_shadow_keep");
    EXPECT_EQ(call(s, "read_kept"), "kept by test_klp_shadow_keep");
    s.unload_lp("test_klp_shadow_keep");
    EXPECT_EQ(call(s, "read_kept"), "kept by test_klp_shadow_keep");
    EXPECT_EQ(call(s, "free_kept"), "none");
    s.check(R"(
% dlopen test_klp_shadow_api.so
% call test_klp_shadow_api read_kept
% graft load test_klp_shadow_keep.so
graft: enabling patch 'test_klp_shadow_keep'
graft: 'test_klp_shadow_keep': initializing patching transition
graft: 'test_klp_shadow_keep': starting patching transition
graft: 'test_klp_shadow_keep': completing patching transition
test_klp_shadow_keep: test_klp_shadow_api: kept by test_klp_shadow_keep
graft: 'test_klp_shadow_keep': patching complete
% call test_klp_shadow_api read_kept
% graft disable test_klp_shadow_keep
graft: 'test_klp_shadow_keep': initializing unpatching transition
graft: 'test_klp_shadow_keep': starting unpatching transition
graft: 'test_klp_shadow_keep': completing unpatching transition
graft: 'test_klp_shadow_keep': unpatching complete
% call test_klp_shadow_api read_kept
% graft unload test_klp_shadow_keep
% call test_klp_shadow_api read_kept
% call test_klp_shadow_api free_kept
)");
}

// graft_shadow_get is lock-free: called from a signal handler that interrupts the same lookup,
// while two threads allocate and free variables in the same hash buckets (each free waits for a
// grace period), it always finds the variables that stay and never returns another object's.
// 1000 signals; violations counted, zero allowed.
TEST(KlpShadowVars, GetFromSignalHandlersDuringAllocAndFree) {
    KlpSession s;
    s.load_mod("test_klp_shadow_api");
    std::string r = call(s, "signal_handler_get");
    EXPECT_EQ(field(r, "violations"), "0") << r;
    EXPECT_EQ(field(r, "handled"), "1000") << r;
    EXPECT_EQ(field(r, "gets"), "many") << r;
    EXPECT_EQ(field(r, "left"), "0") << r;
}

}  // namespace
