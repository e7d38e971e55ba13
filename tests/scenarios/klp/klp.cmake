# The ported kernel selftests (tests/scenarios/klp/klp_*_test.cpp): klp_host plays vmlinux; the
# selftests' target modules are shared objects next to it (fragments klp_*.cmake add them).
graft_test_prog(klp_host ${CMAKE_CURRENT_LIST_DIR}/klp_host.c)

# A target "module" of the selftests: NAME.so next to klp_host, with soname NAME (no ".so") so
# that object names read like the kernel's module names in the transcripts. NO_SONAME: CMake's
# own -soname (NAME.so) would come last on the link line and win.
function(graft_klp_module name)
  graft_test_lib(${name} ${CMAKE_CURRENT_LIST_DIR}/${name}.c)
  set_target_properties(${name} PROPERTIES NO_SONAME ON)
  target_link_options(${name} PRIVATE -Wl,-soname,${name})
  set(GRAFT_ALL_TEST_PROGS ${GRAFT_ALL_TEST_PROGS} PARENT_SCOPE)
endfunction()
# Patches of the ported kernel selftests (tests/scenarios/klp/klp_*_test.cpp), named after the
# kernel's test modules.
graft_test_patch(test_klp_livepatch test_klp_livepatch.c)
