# stacking: one function, patched by three stacked patches.
graft_test_prog(stacking ${CMAKE_CURRENT_LIST_DIR}/stacking.c)
# stacking: three patches of value(), returning 1, 2 and 3.
graft_test_patch(stacking_a stacking_a.c)
graft_test_patch(stacking_b stacking_b.c)
graft_test_patch(stacking_c stacking_c.c)
