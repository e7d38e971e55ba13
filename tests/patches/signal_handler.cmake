# signal_handler: compute() and mix() replaced together.
graft_test_patch(signal_handler_fix signal_handler_fix.c)
