# exec: exec_host execs exec_target (another patchable program) on command.
graft_test_prog(exec_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/exec_host.c)
graft_test_prog(exec_target ${CMAKE_CURRENT_SOURCE_DIR}/progs/exec_target.c)
