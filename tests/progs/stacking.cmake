# stacking: one function, patched by three stacked patches.
graft_test_prog(stacking ${CMAKE_CURRENT_SOURCE_DIR}/progs/stacking.c)
