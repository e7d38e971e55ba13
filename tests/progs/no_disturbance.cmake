# no_disturbance: threads blocked in system calls are not disturbed by transitions.
graft_test_prog(no_disturbance ${CMAKE_CURRENT_SOURCE_DIR}/progs/no_disturbance.c)
