/* unit_patchlike.so: a shared object exporting graft_patch_descriptor, what the checks of a patch
 * file look for (tests/unit/patch_file_rules_test.cpp); never loaded. */
__attribute__((visibility("default"))) void *graft_patch_descriptor(void) { return 0; }
