# objects: a shared library that comes and goes (dlopen, dlmopen, dlclose) under a patch that
# names it; the library's constructor and destructor report what b() returns to them.
graft_test_prog(objects_host ${CMAKE_CURRENT_LIST_DIR}/objects_host.c)
graft_test_lib(objects_lib ${CMAKE_CURRENT_LIST_DIR}/objects_lib.c)
target_link_options(objects_lib PRIVATE -Wl,-soname,objects_lib.so)
# objects: a() in objects_host and b() in objects_lib.so return 1.
graft_test_patch(objects_fix objects_fix.c)
# objects_going_fix: b() returns 1; its unpatch callbacks read the library's data as it goes.
graft_test_patch(objects_going_fix objects_going_fix.c)
# The same library built as distributions build (no graft flags), under the same soname: its
# functions have no patchable entry, graft rewrites their own entries as the library comes.
graft_plain_lib(objects_plain_lib ${CMAKE_CURRENT_LIST_DIR}/objects_lib.c)
target_link_options(objects_plain_lib PRIVATE -Wl,-soname,objects_lib.so)
set_target_properties(objects_plain_lib PROPERTIES NO_SONAME ON)
