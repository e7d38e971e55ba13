# The ported kernel selftests (tests/scenarios/klp_*_test.cpp): klp_host plays vmlinux; the
# selftests' target modules are shared objects next to it (fragments klp_*.cmake add them).
graft_test_prog(klp_host ${CMAKE_CURRENT_SOURCE_DIR}/progs/klp_host.c)
