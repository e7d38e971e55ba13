# ordinary: functions with no patchable entry, in programs built with distribution-default flags
# and in Debian's libz.so.1. One program per build variant; the compiler is the build's (the CI
# matrix builds with gcc and clang).
set(ORDINARY_SOURCES ${CMAKE_CURRENT_LIST_DIR}/ordinary.c ${CMAKE_CURRENT_LIST_DIR}/ordinary_shapes.S)
graft_plain_prog(ordinary_plain SOURCES ${ORDINARY_SOURCES} FLAGS -fomit-frame-pointer LIBS z)
graft_plain_prog(ordinary_fp SOURCES ${ORDINARY_SOURCES} FLAGS -fno-omit-frame-pointer LIBS z)
graft_plain_prog(ordinary_cet SOURCES ${ORDINARY_SOURCES} FLAGS -fcf-protection=full LIBS z)
graft_test_patch(ordinary_fix ordinary_fix.c)
foreach(v tiny_ret loop_entry table_entry)
  graft_test_patch(ordinary_refused_${v} ordinary_refused.c DEFINES VICTIM=${v})
endforeach()
