# For the command-line scenarios: a program that prints its arguments and exits with a status.
graft_test_prog(echo_args ${CMAKE_CURRENT_LIST_DIR}/echo_args.c)
