# wrong_versions (tests/stress): inner() and outer() replaced together.
graft_test_patch(wrong_versions_fix wrong_versions_fix.c)
