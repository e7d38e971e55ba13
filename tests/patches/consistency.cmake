# consistency: v2 layout of producer/consumer/printer, patched together.
graft_test_patch(consistency_v2 consistency_v2.c)
