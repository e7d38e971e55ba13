# Target programs and libraries of the ported kernel selftests test-shadow-vars, test-state,
# test-sysfs, test-syscall and the entry-conflict case that stands for test-ftrace/test-kprobe
# (tests/scenarios/klp/klp_{shadow_vars,state,sysfs,syscall,entry_conflict}_test.cpp). Libraries
# get a soname without ".so" so that object names read like the kernel's module names.
graft_klp_module(test_klp_shadow_vars)
graft_klp_module(test_klp_shadow_api)
graft_klp_module(test_klp_console)
graft_klp_module(test_klp_sysfs_mod)
graft_test_prog(klp_syscall_host ${CMAKE_CURRENT_LIST_DIR}/klp_syscall_host.c)
graft_test_prog(klp_hook_host ${CMAKE_CURRENT_LIST_DIR}/klp_hook_host.c)
# Patches of the ported kernel selftests test-shadow-vars, test-state, test-sysfs, test-syscall
# and the entry-conflict case (tests/scenarios/klp/klp_*_test.cpp), named after the kernel's test
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
