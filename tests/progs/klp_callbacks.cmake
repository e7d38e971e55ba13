# Target "modules" of the ported kernel selftests test-callbacks.sh and test-livepatch.sh
# (tests/scenarios/klp_callbacks_test.cpp, klp_livepatch_test.cpp): shared objects klp_host loads
# next to it. Their sonames carry no ".so", so that object names read like the kernel's module
# names in the transcripts.
graft_klp_module(test_klp_callbacks_mod)
graft_klp_module(test_klp_callbacks_busy)
graft_klp_module(test_klp_mod_target)
target_link_libraries(test_klp_callbacks_busy PRIVATE pthread)
