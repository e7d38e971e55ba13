# objects_race (tests/stress): a library loaded and unloaded in a loop while patches of a() (in
# the executable) and b() (in the library) come and go.
graft_test_prog(objects_race ${CMAKE_CURRENT_LIST_DIR}/objects_race.c)
graft_test_lib(objects_race_lib ${CMAKE_CURRENT_LIST_DIR}/objects_race_lib.c)
target_link_options(objects_race_lib PRIVATE -Wl,-soname,objects_race_lib.so)
# objects_race (tests/stress): race_pN makes a() and b() return N.
graft_test_patch(race_p1 race_p1.c)
graft_test_patch(race_p2 race_p2.c)
graft_test_patch(race_p3 race_p3.c)
