# wrong_versions (tests/stress): inner() and outer() replaced together.
graft_test_patch(wrong_versions_fix wrong_versions_fix.c)
# ... and park(), where a thread blocks to hold the transition open.
graft_test_patch(wrong_versions_park_fix wrong_versions_fix.c DEFINES WITH_PARK)
