# fork: a multi-threaded program that forks on command; the children report f() and exit on
# SIGTERM.
graft_test_prog(fork_host ${CMAKE_CURRENT_LIST_DIR}/fork_host.c)
# fork: f() returns 1 (and, like the original, can hold the holder thread inside it).
graft_test_patch(fork_fix fork_fix.c TARGETS fork_host)
