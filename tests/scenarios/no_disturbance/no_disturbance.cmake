# no_disturbance: threads blocked in system calls are not disturbed by transitions.
graft_test_prog(no_disturbance ${CMAKE_CURRENT_LIST_DIR}/no_disturbance.c)
# no_disturbance: the patch loaded and disabled 100 times.
graft_test_patch(no_disturbance_fix no_disturbance_fix.c)
