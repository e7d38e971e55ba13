# cxx_unwind: C++ exceptions and pthread_cancel through patched functions.
graft_test_prog(cxx_unwind ${CMAKE_CURRENT_SOURCE_DIR}/progs/cxx_unwind.cpp)
