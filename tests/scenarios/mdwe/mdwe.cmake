# mdwe: programs that turn on prctl(PR_SET_MDWE) themselves: one built as a graft target, one
# built the way distributions build, and the library both open after a patch is loaded.
graft_test_prog(mdwe ${CMAKE_CURRENT_LIST_DIR}/mdwe.c)
graft_plain_prog(mdwe_plain SOURCES ${CMAKE_CURRENT_LIST_DIR}/mdwe.c)
graft_plain_lib(mdwe_lib ${CMAKE_CURRENT_LIST_DIR}/mdwe_lib.c)
graft_test_patch(mdwe_fix mdwe_fix.c)
