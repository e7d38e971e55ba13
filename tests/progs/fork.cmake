# fork: a multi-threaded program that forks on command; the children report f() and exit on
# SIGTERM.
graft_test_prog(fork_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/fork_host.c)
