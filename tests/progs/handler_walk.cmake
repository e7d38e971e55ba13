# handler_walk: CPU-bound threads under plain and frame-pointer frames, switched only by signal.
graft_test_prog(handler_walk ${CMAKE_CURRENT_SOURCE_DIR}/progs/handler_walk.c)
