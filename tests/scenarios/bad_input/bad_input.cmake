# bad_input: refused patches and bad requests leave the target unchanged.
graft_test_prog(bad_input ${CMAKE_CURRENT_LIST_DIR}/bad_input.c
                          ${CMAKE_CURRENT_LIST_DIR}/bad_input_twin.c)
graft_test_prog(bad_input_other ${CMAKE_CURRENT_LIST_DIR}/bad_input_other.c)
# A plain shared library (not a patch), next to the test programs: bad_input_plainlib.so.
graft_test_lib(bad_input_plainlib ${CMAKE_CURRENT_LIST_DIR}/bad_input_plainlib.c)
# bad_input: patches the agent must refuse, and the good patch loaded after each refusal.
graft_test_patch(bad_input_fix bad_input_fix.c)
graft_test_patch(bad_input_missing bad_input_missing.c)
graft_test_patch(bad_input_twin0 bad_input_twin0.c)
graft_test_patch(bad_input_twin2 bad_input_twin2.c)
graft_test_patch(bad_input_twin3 bad_input_twin3.c)
graft_test_patch(bad_input_hold bad_input_hold.c)
# The good patch built for this program (accepted) and for another program (refused).
graft_test_patch(bad_input_pinned bad_input_fix.c TARGETS bad_input)
graft_test_patch(bad_input_wrong_target bad_input_fix.c TARGETS bad_input_other)
