# stuck: threads the test parks inside hold() and releases from stdin.
graft_test_prog(stuck ${CMAKE_CURRENT_LIST_DIR}/stuck.c)
# stuck: hold() v2 and version() v2.
graft_test_patch(stuck_fix stuck_fix.c)
