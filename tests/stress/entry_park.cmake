# entry_park (tests/stress): threads parked at each instruction boundary of an ordinary entry
# while graft rewrites it; built as distributions build (no graft flags).
graft_plain_prog(entry_park SOURCES ${CMAKE_CURRENT_LIST_DIR}/entry_park.c FLAGS -fomit-frame-pointer)
graft_test_patch(entry_park_fix entry_park_fix.c)
