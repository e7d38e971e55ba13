# no_disturbance: the patch loaded and disabled 100 times.
graft_test_patch(no_disturbance_fix no_disturbance_fix.c)
