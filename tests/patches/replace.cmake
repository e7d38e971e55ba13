# replace: replace_a (f1), replace_b (f2) and the cumulative replace_r (f1, holder_fn).
graft_test_patch(replace_a replace_a.c)
graft_test_patch(replace_b replace_b.c)
graft_test_patch(replace_r replace_r.c)
