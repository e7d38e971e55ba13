# replace: atomic replace (cumulative patches) with a thread held on the old functions.
graft_test_prog(replace_host ${CMAKE_CURRENT_LIST_DIR}/replace_host.c)
# replace: replace_a (f1), replace_b (f2) and the cumulative replace_r (f1, holder_fn).
graft_test_patch(replace_a replace_a.c)
graft_test_patch(replace_b replace_b.c)
graft_test_patch(replace_r replace_r.c)
