# unwind_forms: threads asleep under plain, frame-pointer and signal frames.
graft_test_prog(unwind_forms ${CMAKE_CURRENT_LIST_DIR}/unwind_forms.c)
# unwind_forms: busy_plain(), busy_fp() and busy_sig() replaced.
graft_test_patch(unwind_forms_fix unwind_forms_fix.c TARGETS unwind_forms)
