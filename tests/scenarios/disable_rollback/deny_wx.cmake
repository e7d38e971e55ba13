# deny_wx: a program that forbids writable+executable pages on command (tests/scenarios/disable_rollback/disable_rollback_test.cpp).
graft_test_prog(deny_wx ${CMAKE_CURRENT_LIST_DIR}/deny_wx.c)
# deny_wx_fix: value() returns 2, with callbacks that print their names.
graft_test_patch(deny_wx_fix deny_wx_fix.c)
