# exec: exec_host execs exec_target (another patchable program) on command.
graft_test_prog(exec_host ${CMAKE_CURRENT_LIST_DIR}/exec_host.c)
graft_test_prog(exec_target ${CMAKE_CURRENT_LIST_DIR}/exec_target.c)
# exec: f() of exec_host returns 1, f() of exec_target returns 2 (each pinned to its program).
graft_test_patch(exec_fix exec_fix.c TARGETS exec_host)
graft_test_patch(exec_target_fix exec_target_fix.c TARGETS exec_target)
