# entry_park (tests/stress): threads parked at each instruction boundary of an ordinary entry
# while graft rewrites it; built as distributions build (no graft flags).
graft_plain_prog(entry_park SOURCES ${CMAKE_CURRENT_LIST_DIR}/entry_park.c FLAGS -fomit-frame-pointer)
graft_test_patch(entry_park_fix entry_park_fix.c)
# The same with `graft flags target --entry jump` (5 bytes of nop at the entry), started without
# graft and attached to: gcc's five 1-byte nops stay, and parkers stand between them.
graft_plain_prog(entry_park_jump SOURCES ${CMAKE_CURRENT_LIST_DIR}/entry_park.c
  FLAGS -fomit-frame-pointer ${GRAFT_TARGET_FLAGS_JUMP})
# graft's gate layout with endbr64, started without graft and attached to: the attach merges gcc's
# `90 90` gate while a parker stands on its second byte, where the open gate's displacement would
# be `f4` (hlt).
graft_plain_prog(entry_park_gate SOURCES ${CMAKE_CURRENT_LIST_DIR}/entry_park.c
  FLAGS -fomit-frame-pointer ${GRAFT_TARGET_FLAGS} -fcf-protection=full -DGATE_LAYOUT)
