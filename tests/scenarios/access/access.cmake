# access: who may control a process, and clients that cannot delay one another.
graft_test_prog(access ${CMAKE_CURRENT_LIST_DIR}/access.c)
# Not an agent: binds another process's control-socket name (run as another user by the test).
graft_test_prog(access_fake_agent ${CMAKE_CURRENT_LIST_DIR}/access_fake_agent.c)
