# malformed_elf: malformed patch files and plugins never harm the target (issue 12).
graft_test_prog(malformed_elf ${CMAKE_CURRENT_SOURCE_DIR}/progs/malformed_elf.c)
graft_test_lib(malformed_elf_plugin ${CMAKE_CURRENT_SOURCE_DIR}/progs/malformed_elf_plugin.c)
