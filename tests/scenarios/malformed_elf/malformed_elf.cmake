# malformed_elf: malformed patch files and plugins never harm the target (issue 12).
graft_test_prog(malformed_elf ${CMAKE_CURRENT_LIST_DIR}/malformed_elf.c)
graft_test_lib(malformed_elf_plugin ${CMAKE_CURRENT_LIST_DIR}/malformed_elf_plugin.c)
# malformed_elf: the good patch; the test makes the malformed ones from copies of it.
graft_test_patch(malformed_elf_fix malformed_elf_fix.c)
