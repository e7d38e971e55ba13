# attach: programs started without graft (the tests reuse basic and no_disturbance), and one that
# cannot be attached because it is statically linked.
graft_test_prog(attach_static ${CMAKE_CURRENT_LIST_DIR}/attach_static.c)
target_link_options(attach_static PRIVATE -static)
graft_test_prog(attach_idle ${CMAKE_CURRENT_LIST_DIR}/attach_idle.c)
# The same, linked with -z now: its GOT is bound at load time and then read-only (RELRO).
graft_test_prog(attach_idle_now ${CMAKE_CURRENT_LIST_DIR}/attach_idle.c)
target_link_options(attach_idle_now PRIVATE -Wl,-z,relro -Wl,-z,now)
graft_test_prog(attach_regs ${CMAKE_CURRENT_LIST_DIR}/attach_regs.c)
graft_test_prog(attach_seccomp ${CMAKE_CURRENT_LIST_DIR}/attach_seccomp.c)
graft_test_prog(attach_loader ${CMAKE_CURRENT_LIST_DIR}/attach_loader.c)
# A C++ program whose only thread waits in std::getline(std::cin).
graft_test_prog(attach_getline ${CMAKE_CURRENT_LIST_DIR}/attach_getline.cpp)
