# Patches of the ported kernel selftests (tests/scenarios/klp_*_test.cpp), named after the
# kernel's test modules.
graft_test_patch(test_klp_livepatch test_klp_livepatch.c)
