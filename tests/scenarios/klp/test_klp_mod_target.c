/* test_klp_mod_target (kernel: selftests/livepatch/test_modules/test_klp_mod_target.c): a target
 * whose test_klp_mod_target_show() test_klp_mod_patch replaces. The kernel reads it through
 * /proc/test_klp_mod_target; here klp_host calls it ("call test_klp_mod_target
 * test_klp_mod_target_show"). */
extern void graft_log(const char *fmt, ...) __attribute__((weak));

#define pr_info(fmt, ...) \
    do { \
        if (graft_log) graft_log("test_klp_mod_target: " fmt, ##__VA_ARGS__); \
    } while (0)

__attribute__((noinline)) const char *test_klp_mod_target_show(void) {
    return "test_klp_mod_target: original output";
}

__attribute__((constructor)) static void test_klp_mod_target_init(void) {
    pr_info("%s", __func__);
}

__attribute__((destructor)) static void test_klp_mod_target_exit(void) {
    pr_info("%s", __func__);
}
