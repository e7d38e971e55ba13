# signal_handler: a signal handler calls patched functions while transitions come and go.
graft_test_prog(signal_handler ${CMAKE_CURRENT_SOURCE_DIR}/progs/signal_handler.c)
