# nocfi_fix: value() of nocfi_host returns 2.
graft_test_patch(nocfi_fix nocfi_fix.c)
