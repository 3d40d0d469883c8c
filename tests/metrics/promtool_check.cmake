# Runs PRINTER and pipes its output through `PROMTOOL check metrics`; fails when the
# printer fails, promtool exits non-zero, or promtool prints anything at all.
execute_process(COMMAND ${PRINTER} OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/exposition.txt RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "print_exposition failed: ${rc}")
endif()
execute_process(COMMAND ${PROMTOOL} check metrics INPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/exposition.txt
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT "${out}${err}" STREQUAL "")
  message(FATAL_ERROR "promtool check metrics (exit ${rc}):\n${out}${err}")
endif()
message(STATUS "promtool check metrics: no complaint")
