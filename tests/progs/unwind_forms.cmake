# unwind_forms: threads asleep under plain, frame-pointer and signal frames.
graft_test_prog(unwind_forms ${CMAKE_CURRENT_SOURCE_DIR}/progs/unwind_forms.c)
