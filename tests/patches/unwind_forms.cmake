# unwind_forms: busy_plain(), busy_fp() and busy_sig() replaced.
graft_test_patch(unwind_forms_fix unwind_forms_fix.c TARGETS unwind_forms)
