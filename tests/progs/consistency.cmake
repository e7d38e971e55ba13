# consistency: producer/consumer/printer share a record whose layout the patch changes.
graft_test_prog(consistency ${CMAKE_CURRENT_SOURCE_DIR}/progs/consistency.c)
