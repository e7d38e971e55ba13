# cxx_unwind: C++ exceptions and pthread_cancel through patched functions.
graft_test_prog(cxx_unwind ${CMAKE_CURRENT_LIST_DIR}/cxx_unwind.cpp)
# cxx_unwind: C++ patches whose functions throw, pass exceptions through and are cancelled.
graft_test_patch(cxx_unwind_fix cxx_unwind_fix.cpp)
graft_test_patch(cxx_unwind_cxx_macro cxx_unwind_cxx_macro.cpp)
