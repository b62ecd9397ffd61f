# Integration tests: the real pgscribe binary against a real PostgreSQL and a
# real Apache Kafka broker, started by the stack.up fixture (scripts/stack.sh)
# and stopped by stack.down, so `ctest` alone runs everything.
set(PGS_IT_ENV "PGSCRIBE_BIN=$<TARGET_FILE:pgscribe>" "PGSCRIBE_ASAN_BIN=$<TARGET_FILE:pgscribe_asan>")

add_test(NAME stack.up COMMAND ${CMAKE_SOURCE_DIR}/scripts/stack.sh up)
set_tests_properties(stack.up PROPERTIES FIXTURES_SETUP stack TIMEOUT 600 LABELS integration)
add_test(NAME stack.down COMMAND ${CMAKE_SOURCE_DIR}/scripts/stack.sh down)
set_tests_properties(stack.down PROPERTIES FIXTURES_CLEANUP stack TIMEOUT 120 LABELS integration)

function(pgs_integration_test name timeout)
  add_test(NAME integration.${name}
           COMMAND bash ${CMAKE_SOURCE_DIR}/tests/integration/test_${name}.sh)
  set_tests_properties(integration.${name} PROPERTIES FIXTURES_REQUIRED stack
    ENVIRONMENT "${PGS_IT_ENV}" TIMEOUT ${timeout} LABELS integration RUN_SERIAL ON)
endfunction()

file(GLOB PGS_IT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/integration/test_*.sh)
foreach(t ${PGS_IT_TESTS})
  get_filename_component(n ${t} NAME_WE)
  string(REGEX REPLACE "^test_" "" n ${n})
  pgs_integration_test(${n} 900)
endforeach()
