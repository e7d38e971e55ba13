# Symbols for the unit tests of symbol resolution: two static `helper`s, one global function.
graft_test_prog(unit_syms ${CMAKE_CURRENT_LIST_DIR}/unit_syms_a.c ${CMAKE_CURRENT_LIST_DIR}/unit_syms_b.c)
# A shared object shaped like a patch (it exports graft_patch_descriptor) for the patch-file unit tests.
graft_test_lib(unit_patchlike ${CMAKE_CURRENT_LIST_DIR}/unit_patchlike.c)
