# objects_race (tests/stress): race_pN makes a() and b() return N.
graft_test_patch(race_p1 race_p1.c)
graft_test_patch(race_p2 race_p2.c)
graft_test_patch(race_p3 race_p3.c)
