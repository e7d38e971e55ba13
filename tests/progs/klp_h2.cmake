# Target programs and libraries of the ported kernel selftests test-shadow-vars, test-state,
# test-sysfs, test-syscall and the entry-conflict case that stands for test-ftrace/test-kprobe
# (tests/scenarios/klp_{shadow_vars,state,sysfs,syscall,entry_conflict}_test.cpp). Libraries
# get a soname without ".so" so that object names read like the kernel's module names.
graft_klp_module(test_klp_shadow_vars)
graft_klp_module(test_klp_shadow_api)
graft_klp_module(test_klp_console)
graft_klp_module(test_klp_sysfs_mod)
graft_test_prog(klp_syscall_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/klp_syscall_host.c)
graft_test_prog(klp_hook_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/klp_hook_host.c)
