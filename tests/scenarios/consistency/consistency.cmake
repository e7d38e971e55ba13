# consistency: producer/consumer/printer share a record whose layout the patch changes.
graft_test_prog(consistency ${CMAKE_CURRENT_LIST_DIR}/consistency.c)
# consistency: v2 layout of producer/consumer/printer, patched together.
graft_test_patch(consistency_v2 consistency_v2.c)
