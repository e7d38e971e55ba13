// The kernel's tools/testing/selftests/livepatch/test-livepatch.sh, ported (reference:
// kernel-livepatch.md 8.3): the same cases and the same expected transcripts, in graft's words.
#include <gtest/gtest.h>

#include "klp_session.hpp"

using namespace graft::test;

namespace {

const std::string kPatched = "test_klp_livepatch: this has been live patched";

// 1. basic function patching
TEST(KlpLivepatch, BasicFunctionPatching) {
    KlpSession s;
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

}  // namespace
