# wrong_versions (tests/stress): two functions patched together, called by many threads.
graft_test_prog(wrong_versions ${CMAKE_CURRENT_SOURCE_DIR}/progs/wrong_versions.c)
