# malformed_elf: the good patch; the test makes the malformed ones from copies of it.
graft_test_patch(malformed_elf_fix malformed_elf_fix.c)
