# handler_walk: CPU-bound threads under plain and frame-pointer frames, switched only by signal.
graft_test_prog(handler_walk ${CMAKE_CURRENT_LIST_DIR}/handler_walk.c)
# handler_walk: busy_spin() and busy_fp_spin() replaced.
graft_test_patch(handler_walk_fix handler_walk_fix.c TARGETS handler_walk)
