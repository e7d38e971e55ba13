# deny_wx_fix: value() returns 2, with callbacks that print their names.
graft_test_patch(deny_wx_fix deny_wx_fix.c)
