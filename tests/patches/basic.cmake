# Test patches, built with `graft build`.
graft_test_patch(basic_fix basic_fix.c)
graft_test_patch(basic_fix_pinned basic_fix.c TARGETS basic)
