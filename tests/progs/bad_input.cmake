# bad_input: refused patches and bad requests leave the target unchanged.
graft_test_prog(bad_input ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input.c
                          ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_twin.c)
graft_test_prog(bad_input_other ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_other.c)
# A plain shared library (not a patch), next to the test programs: bad_input_plainlib.so.
add_library(bad_input_plainlib SHARED ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_plainlib.c)
set_target_properties(bad_input_plainlib PROPERTIES PREFIX "" OUTPUT_NAME bad_input_plainlib
  LIBRARY_OUTPUT_DIRECTORY ${GRAFT_TEST_PROGS})
list(APPEND GRAFT_ALL_TEST_PROGS bad_input_plainlib)
