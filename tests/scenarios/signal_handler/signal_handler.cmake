# signal_handler: a signal handler calls patched functions while transitions come and go.
graft_test_prog(signal_handler ${CMAKE_CURRENT_LIST_DIR}/signal_handler.c)
# signal_handler: compute() and mix() replaced together.
graft_test_patch(signal_handler_fix signal_handler_fix.c)
