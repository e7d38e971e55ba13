# stuck: threads the test parks inside hold() and releases from stdin.
graft_test_prog(stuck ${CMAKE_CURRENT_SOURCE_DIR}/progs/stuck.c)
