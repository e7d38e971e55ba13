# fork: f() returns 1 (and, like the original, can hold the holder thread inside it).
graft_test_patch(fork_fix fork_fix.c TARGETS fork_host)
