# Patches of the ported kernel selftests test-shadow-vars, test-state, test-sysfs, test-syscall
# and the entry-conflict case (tests/scenarios/klp_*_test.cpp), named after the kernel's test
# modules where the kernel has one.
graft_test_patch(test_klp_state test_klp_state.c)
graft_test_patch(test_klp_state2 test_klp_state2.c)
# The kernel's test_klp_state3.c is `#include "test_klp_state2.c"`: the same code, another name.
graft_test_patch(test_klp_state3 test_klp_state2.c DEFINES STATE3=1)
graft_test_patch(test_klp_shadow_keep test_klp_shadow_keep.c)
# test-sysfs: test_klp_sysfs_demo stands for test_klp_callbacks_demo, test_klp_sysfs_replace0/1
# for test_klp_atomic_replace with replace=0/1.
graft_test_patch(test_klp_sysfs_demo test_klp_sysfs_demo.c)
graft_test_patch(test_klp_sysfs_replace0 test_klp_sysfs_replace.c DEFINES REPLACE=0)
graft_test_patch(test_klp_sysfs_replace1 test_klp_sysfs_replace.c DEFINES REPLACE=1)
graft_test_patch(test_klp_syscall test_klp_syscall.c)
# The entry-conflict case: one patch for the function another tool hooked, one for a function
# nobody hooked (one source).
graft_test_patch(test_klp_hooked test_klp_hook.c DEFINES HOOKED=1)
graft_test_patch(test_klp_unhooked test_klp_hook.c DEFINES HOOKED=0)
