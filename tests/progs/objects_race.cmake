# objects_race (tests/stress): a library loaded and unloaded in a loop while patches of a() (in
# the executable) and b() (in the library) come and go.
graft_test_prog(objects_race ${CMAKE_CURRENT_SOURCE_DIR}/progs/objects_race.c)
graft_test_lib(objects_race_lib ${CMAKE_CURRENT_SOURCE_DIR}/progs/objects_race_lib.c)
target_link_options(objects_race_lib PRIVATE -Wl,-soname,objects_race_lib.so)
