# wrong_versions (tests/stress): two functions patched together, called by many threads.
graft_test_prog(wrong_versions ${CMAKE_CURRENT_LIST_DIR}/wrong_versions.c)
# wrong_versions (tests/stress): inner() and outer() replaced together.
graft_test_patch(wrong_versions_fix wrong_versions_fix.c)
# ... and park(), where a thread blocks to hold the transition open.
graft_test_patch(wrong_versions_park_fix wrong_versions_fix.c DEFINES WITH_PARK)
