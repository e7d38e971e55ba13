# bad_input: refused patches and bad requests leave the target unchanged.
graft_test_prog(bad_input ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input.c
                          ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_twin.c)
graft_test_prog(bad_input_other ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_other.c)
# A plain shared library (not a patch), next to the test programs: bad_input_plainlib.so.
graft_test_lib(bad_input_plainlib ${CMAKE_CURRENT_SOURCE_DIR}/progs/bad_input_plainlib.c)
