/* test_klp_callbacks_mod (kernel: selftests/livepatch/test_modules/test_klp_callbacks_mod.c): a
 * target that does nothing but say when it is loaded and unloaded; test_klp_callbacks_demo names
 * it as an object without functions, so only the callbacks show that the patch saw it. */
extern void graft_log(const char *fmt, ...) __attribute__((weak));

#define pr_info(fmt, ...) \
    do { \
        if (graft_log) graft_log("test_klp_callbacks_mod: " fmt, ##__VA_ARGS__); \
    } while (0)

__attribute__((constructor)) static void test_klp_callbacks_mod_init(void) {
    pr_info("%s", __func__);
}

__attribute__((destructor)) static void test_klp_callbacks_mod_exit(void) {
    pr_info("%s", __func__);
}
