# nnp_plugin_test(NAME PLUGIN...): the Criterion suite tests/plugins/NAME.c
# (with tests/common/testutil.c and libm), built after the plugins it loads.
# Shared by the plugins' CMakeLists, each of which includes this file.
include_guard(GLOBAL)

function(nnp_plugin_test name)
  nnp_add_test(${name} SOURCES
    ${CMAKE_SOURCE_DIR}/tests/plugins/${name}.c
    ${CMAKE_SOURCE_DIR}/tests/common/testutil.c)
  target_link_libraries(${name} PRIVATE m)
  add_dependencies(${name} ${ARGN})
endfunction()
