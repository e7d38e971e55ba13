# basic: the first user story. Programs are built like a user's target (tests/README.md).
graft_test_prog(basic ${CMAKE_CURRENT_LIST_DIR}/basic.c)
# Test patches, built with `graft build`.
graft_test_patch(basic_fix basic_fix.c)
graft_test_patch(basic_fix_pinned basic_fix.c TARGETS basic)
