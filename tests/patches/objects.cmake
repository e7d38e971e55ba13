# objects: a() in objects_host and b() in objects_lib.so return 1.
graft_test_patch(objects_fix objects_fix.c)
