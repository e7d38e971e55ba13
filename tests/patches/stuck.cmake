# stuck: hold() v2 and version() v2.
graft_test_patch(stuck_fix stuck_fix.c)
