# Test programs (one per user story; see tests/README.md). Each is built like a user's target.
graft_test_prog(basic ${CMAKE_CURRENT_SOURCE_DIR}/progs/basic.c)
