# gconv: a gconv module (charset GRAFTTEST) that glibc itself loads for iconv_host; its
# `gconv-modules` file goes next to the programs, where iconv_host points GCONV_PATH.
graft_test_prog(iconv_host ${CMAKE_CURRENT_LIST_DIR}/iconv_host.c)
graft_test_lib(gconv_graft ${CMAKE_CURRENT_LIST_DIR}/gconv_graft.c)
target_link_options(gconv_graft PRIVATE -Wl,-soname,gconv_graft.so)
file(WRITE ${GRAFT_TEST_PROGS}/gconv-modules
  "# For tests/scenarios/gconv/iconv_host.c: the charset GRAFTTEST, converted by gconv_graft.so.\n"
  "module GRAFTTEST// INTERNAL gconv_graft 1\n"
  "module INTERNAL GRAFTTEST// gconv_graft 1\n")
# gconv: graft_map_char() in gconv_graft.so maps ASCII letters to upper case.
graft_test_patch(gconv_fix gconv_fix.c)
