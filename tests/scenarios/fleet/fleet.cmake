# fleet: one library in two builds (same soname, different build-ids), a program started many
# times without graft against one build or the other, and a patch made for build a.
foreach(b a b)
  graft_test_lib(fleet_lib_${b} ${CMAKE_CURRENT_LIST_DIR}/fleet_lib.c)
  target_compile_definitions(fleet_lib_${b} PRIVATE FLEET_BUILD="${b}")
  target_link_options(fleet_lib_${b} PRIVATE -Wl,-soname,libfleet.so)
  set_target_properties(fleet_lib_${b} PROPERTIES OUTPUT_NAME libfleet
    LIBRARY_OUTPUT_DIRECTORY ${GRAFT_TEST_PROGS}/fleet_${b})
endforeach()
graft_test_prog(fleet_worker ${CMAKE_CURRENT_LIST_DIR}/fleet_worker.c)
target_link_libraries(fleet_worker PRIVATE fleet_lib_a)
# The test picks the build with LD_LIBRARY_PATH, which a build-tree RPATH would override.
set_target_properties(fleet_worker PROPERTIES SKIP_BUILD_RPATH TRUE)
# fleet_value() of build a returns 2.
graft_test_patch(fleet_fix fleet_fix.c TARGETS fleet_lib_a)
