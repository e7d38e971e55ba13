# The one place the flags of `graft flags target|patch` are written down. The graft command
# (src/cli/cmd_flags.cpp, through the generated graft_flags.h), the tests' fixtures
# (tests/CMakeLists.txt), the CMake package (graftConfig.cmake) and the pkg-config files
# (graft.pc, graft-target.pc) all take them from here. Why each flag is there:
# docs/patch-authors-guide.md §1.
#
# A patchable target: a 16-byte aligned patchable entry (14 bytes before the symbol, a 2-byte
# gate at it), CFI at every instruction, and no interprocedural change that lets callers depend
# on a function's body (register usage, cloned signatures, identical-code folding, partial
# inlining).
set(GRAFT_TARGET_FLAGS_COMMON -fpatchable-function-entry=16,14 -falign-functions=16
    -fasynchronous-unwind-tables)
# gcc: -flive-patching=inline-only-static turns off every interprocedural analysis a caller could
# depend on (ipa-ra, pure-const, modref, ipa-vrp, icf, cloning...); and no .cold partition.
set(GRAFT_TARGET_FLAGS_GCC ${GRAFT_TARGET_FLAGS_COMMON} -flive-patching=inline-only-static
    -fno-reorder-blocks-and-partition)
# clang has no -flive-patching, but -fPIC -fsemantic-interposition makes every global function
# interposable, and clang then assumes nothing of a callee's body (it reloads memory after a call
# instead of trusting an inferred attribute). Static functions stay exposed: docs/limitations.md.
set(GRAFT_TARGET_FLAGS_CLANG ${GRAFT_TARGET_FLAGS_COMMON} -fPIC -fsemantic-interposition)
# The jump layout (`graft flags target --entry jump`): 5 bytes of nop at the entry (after endbr64)
# and nothing before it. graft writes a 5-byte `jmp rel32` over them by the int3 protocol of
# ordinary entries (docs/design.md §2.6), nothing to relocate; once a transition completed, a
# function in a shared object costs one direct jump (docs/performance.md). Same other flags.
set(GRAFT_TARGET_JUMP_ENTRY -fpatchable-function-entry=5,0)
foreach(_cc GCC CLANG)
  list(TRANSFORM GRAFT_TARGET_FLAGS_${_cc} REPLACE "^-fpatchable-function-entry=16,14$"
       "${GRAFT_TARGET_JUMP_ENTRY}" OUTPUT_VARIABLE GRAFT_TARGET_FLAGS_${_cc}_JUMP)
endforeach()
# A patch: compiled position-independent with full CFI, linked as a shared object (the -I of the
# public header is added where it is known: `graft flags patch`, graft.pc, graft::patch).
set(GRAFT_PATCH_COMPILE_FLAGS -fPIC -fasynchronous-unwind-tables)
set(GRAFT_PATCH_LINK_FLAGS -shared -Wl,--build-id)
