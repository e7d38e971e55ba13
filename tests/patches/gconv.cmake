# gconv: graft_map_char() in gconv_graft.so maps ASCII letters to upper case.
graft_test_patch(gconv_fix gconv_fix.c)
