# replace: atomic replace (cumulative patches) with a thread held on the old functions.
graft_test_prog(replace_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/replace_host.c)
