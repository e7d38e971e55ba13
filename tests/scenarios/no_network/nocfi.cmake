# nocfi: a thread waiting inside a library without unwind tables (tests/scenarios/no_network/no_network_test.cpp).
graft_test_lib(libnocfi ${CMAKE_CURRENT_LIST_DIR}/nocfi_lib.c)
target_compile_options(libnocfi PRIVATE -fno-asynchronous-unwind-tables -fno-unwind-tables -g0)
set_target_properties(libnocfi PROPERTIES OUTPUT_NAME nocfi PREFIX lib)
graft_test_prog(nocfi_host ${CMAKE_CURRENT_LIST_DIR}/nocfi_host.c)
target_link_libraries(nocfi_host PRIVATE libnocfi)
set_target_properties(nocfi_host PROPERTIES BUILD_RPATH ${GRAFT_TEST_PROGS})
# nocfi_fix: value() of nocfi_host returns 2.
graft_test_patch(nocfi_fix nocfi_fix.c)
