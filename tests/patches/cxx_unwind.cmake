# cxx_unwind: C++ patches whose functions throw, pass exceptions through and are cancelled.
graft_test_patch(cxx_unwind_fix cxx_unwind_fix.cpp)
graft_test_patch(cxx_unwind_cxx_macro cxx_unwind_cxx_macro.cpp)
