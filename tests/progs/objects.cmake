# objects: a shared library that comes and goes (dlopen, dlmopen, dlclose) under a patch that
# names it; the library's constructor and destructor report what b() returns to them.
graft_test_prog(objects_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/objects_host.c)
graft_test_lib(objects_lib ${CMAKE_CURRENT_SOURCE_DIR}/progs/objects_lib.c)
target_link_options(objects_lib PRIVATE -Wl,-soname,objects_lib.so)
