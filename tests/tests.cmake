# Every busted spec is one ctest, run with lua5.4 named explicitly.
find_program(LUA54 lua5.4 REQUIRED)
file(GLOB SPECS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/*_spec.lua)
list(SORT SPECS)
foreach(spec ${SPECS})
  get_filename_component(name ${spec} NAME_WE)
  add_test(NAME ${name}
    COMMAND ${LUA54} ${CMAKE_SOURCE_DIR}/tests/run_busted.lua ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "MOONFLOW_BUILD=${CMAKE_BINARY_DIR};MOONFLOW_ROOT=${CMAKE_SOURCE_DIR}"
    TIMEOUT 300)
endforeach()

# C tests of the core without Lua
file(GLOB C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
foreach(src ${C_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE moonflow)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
  add_test(NAME ${name} COMMAND ${name})
endforeach()

# The embedded kernel source compiles warning-free under clang-15 -Wall -Wextra
add_test(NAME kernel_warnings
  COMMAND sh ${CMAKE_SOURCE_DIR}/tests/kernel_warnings.sh ${CMAKE_BINARY_DIR}/generated/kernels_all.cl)
set_tests_properties(kernel_warnings PROPERTIES SKIP_RETURN_CODE 77)
