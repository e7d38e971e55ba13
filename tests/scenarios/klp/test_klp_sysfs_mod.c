/* test_klp_sysfs_mod: the target library of test-sysfs case 2 (kernel: test_klp_callbacks_mod):
 * its object's `patched` goes 0 -> 1 -> 0 in `graft list` as it is loaded and unloaded under
 * test_klp_sysfs_demo (tests/scenarios/klp/klp_sysfs_test.cpp). Unlike the kernel's module it has a
 * function the patch replaces, so that `patched` can be checked against what runs. */
extern void graft_log(const char *fmt, ...) __attribute__((weak));

__attribute__((noinline)) const char *test_klp_sysfs_mod_show(void) {
    return "test_klp_sysfs_mod: original output";
}

__attribute__((constructor)) static void test_klp_sysfs_mod_init(void) {
    if (graft_log) graft_log("test_klp_sysfs_mod: %s", __func__);
}

__attribute__((destructor)) static void test_klp_sysfs_mod_exit(void) {
    if (graft_log) graft_log("test_klp_sysfs_mod: %s", __func__);
}
