/* malformed_elf_plugin.so: a plugin malformed_elf dlopen()s; the test corrupts copies of it. */
__attribute__((visibility("default"))) int plugin_value(void) {
    return 42;
}
