# nocfi: a thread waiting inside a library without unwind tables (tests/scenarios/no_network_test.cpp).
graft_test_lib(libnocfi ${CMAKE_CURRENT_SOURCE_DIR}/progs/nocfi_lib.c)
target_compile_options(libnocfi PRIVATE -fno-asynchronous-unwind-tables -fno-unwind-tables -g0)
set_target_properties(libnocfi PROPERTIES OUTPUT_NAME nocfi PREFIX lib)
graft_test_prog(nocfi_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/nocfi_host.c)
target_link_libraries(nocfi_host PRIVATE libnocfi)
set_target_properties(nocfi_host PROPERTIES BUILD_RPATH ${GRAFT_TEST_PROGS})
