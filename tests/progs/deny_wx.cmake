# deny_wx: a program that forbids writable+executable pages on command (tests/scenarios/disable_rollback_test.cpp).
graft_test_prog(deny_wx ${CMAKE_CURRENT_SOURCE_DIR}/progs/deny_wx.c)
