# ordinary: functions with no patchable entry, in programs built with distribution-default flags
# and in Debian's libz.so.1. One program per build variant; the compiler is the build's (the CI
# matrix builds with gcc and clang).
set(ORDINARY_SOURCES ${CMAKE_CURRENT_LIST_DIR}/ordinary.c ${CMAKE_CURRENT_LIST_DIR}/ordinary_shapes.S)
graft_plain_prog(ordinary_plain SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer LIBS z)
graft_plain_prog(ordinary_fp SOURCES ${ORDINARY_SOURCES} FLAGS -fno-omit-frame-pointer LIBS z)
graft_plain_prog(ordinary_cet SOURCES ${ORDINARY_SOURCES} FLAGS -fcf-protection=full LIBS z)
# The jump layout (`graft flags target --entry jump`) in the program and in a shared object.
graft_plain_lib(ordinary_jumplib ${CMAKE_CURRENT_LIST_DIR}/ordinary_jumplib.c)
target_compile_options(ordinary_jumplib PRIVATE ${GRAFT_TARGET_FLAGS_JUMP})
graft_plain_prog(ordinary_jump SOURCES ${ORDINARY_SOURCES} FLAGS ${GRAFT_TARGET_FLAGS_JUMP} -DJUMP_LIB
  LIBS z ordinary_jumplib)
set_target_properties(ordinary_jump PROPERTIES BUILD_RPATH ${GRAFT_TEST_PROGS})
graft_test_patch(ordinary_jump_fix ordinary_jump_fix.c)
graft_test_patch(ordinary_fix ordinary_fix.c)
graft_test_patch(ordinary_libc_fix ordinary_libc_fix.c)
graft_test_patch(ordinary_stack_b ordinary_stack_b.c)
graft_test_patch(ordinary_replace_c ordinary_replace_c.c)
foreach(v tiny_ret loop_entry table_entry cold_entry)
  graft_test_patch(ordinary_refused_${v} ordinary_refused.c DEFINES VICTIM=${v})
endforeach()
# Stripped as distributions ship (only .dynsym), with the debug information apart, found by
# build-id under a debug directory (GRAFT_DEBUG_DIR, as /usr/lib/debug for Debian's -dbgsym
# packages), or by .gnu_debuglink in the .debug folder next to the program.
graft_plain_prog(ordinary_stripped SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer LIBS z)
add_custom_command(TARGET ordinary_stripped POST_BUILD
  COMMAND bash -c "f=$<TARGET_FILE:ordinary_stripped>; id=$(readelf -n $f | sed -n 's/.*Build ID: //p'); d=${GRAFT_TEST_PROGS}/debug/.build-id/\${id:0:2}; mkdir -p $d && objcopy --only-keep-debug $f $d/\${id:2}.debug && strip --strip-all $f"
  VERBATIM)
graft_plain_prog(ordinary_debuglink SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer LIBS z)
add_custom_command(TARGET ordinary_debuglink POST_BUILD
  COMMAND bash -c "f=$<TARGET_FILE:ordinary_debuglink>; mkdir -p ${GRAFT_TEST_PROGS}/.debug && objcopy --only-keep-debug $f ${GRAFT_TEST_PROGS}/.debug/ordinary_debuglink.debug && strip --strip-all $f && objcopy --add-gnu-debuglink=${GRAFT_TEST_PROGS}/.debug/ordinary_debuglink.debug $f"
  VERBATIM)
# Stripped, no debug file anywhere: symbols come only from a file the user names (graft load
# --symbols). symbols/ordinary_nosyms.rebuild is the same build with another build-id (as a rebuild
# from the same source whose debug information differs), symbols/ordinary_nosyms.other a build with
# other flags (other code): the first is accepted after comparing code and data, the second refused.
graft_plain_prog(ordinary_nosyms SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer LIBS z)
add_custom_command(TARGET ordinary_nosyms POST_BUILD
  COMMAND bash -c "f=$<TARGET_FILE:ordinary_nosyms>; d=${GRAFT_TEST_PROGS}/symbols; mkdir -p $d && printf '\\x04\\x00\\x00\\x00\\x14\\x00\\x00\\x00\\x03\\x00\\x00\\x00GNU\\x00\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab\\xab' > $d/note.bin && objcopy --update-section .note.gnu.build-id=$d/note.bin $f $d/ordinary_nosyms.rebuild && strip --strip-all $f"
  VERBATIM)
graft_plain_prog(ordinary_nosyms_other SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer -O1 LIBS z)
add_custom_command(TARGET ordinary_nosyms_other POST_BUILD
  COMMAND bash -c "mkdir -p ${GRAFT_TEST_PROGS}/symbols && cp $<TARGET_FILE:ordinary_nosyms_other> ${GRAFT_TEST_PROGS}/symbols/ordinary_nosyms.other"
  VERBATIM)
