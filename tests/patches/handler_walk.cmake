# handler_walk: busy_spin() and busy_fp_spin() replaced.
graft_test_patch(handler_walk_fix handler_walk_fix.c TARGETS handler_walk)
