# Target "modules" of the ported kernel selftests test-callbacks.sh and test-livepatch.sh
# (tests/scenarios/klp/klp_callbacks_test.cpp, klp_livepatch_test.cpp): shared objects klp_host loads
# next to it. Their sonames carry no ".so", so that object names read like the kernel's module
# names in the transcripts.
graft_klp_module(test_klp_callbacks_mod)
graft_klp_module(test_klp_callbacks_busy)
graft_klp_module(test_klp_mod_target)
target_link_libraries(test_klp_callbacks_busy PRIVATE pthread)
# Patches of the ported kernel selftests test-callbacks.sh and test-livepatch.sh cases 2-5
# (tests/scenarios/klp/klp_callbacks_test.cpp, klp_livepatch_test.cpp), named after the kernel's test
# modules. The kernel's `replace` module parameter becomes a second build of the same source
# (REPLACE=1, file NAME_replace.so, same patch name): each test loads only one of the two.
graft_test_patch(test_klp_callbacks_demo test_klp_callbacks_demo.c)
graft_test_patch(test_klp_callbacks_demo2 test_klp_callbacks_demo2.c)
graft_test_patch(test_klp_callbacks_demo2_replace test_klp_callbacks_demo2.c DEFINES REPLACE=1)
graft_test_patch(test_klp_atomic_replace test_klp_atomic_replace.c)
graft_test_patch(test_klp_atomic_replace_replace test_klp_atomic_replace.c DEFINES REPLACE=1)
graft_test_patch(test_klp_mod_patch test_klp_mod_patch.c)
