# Checks that the README's quick start is examples/quick_start.cpp, byte for byte.
# The snippet is the ```cpp block right after the line "<!-- examples/quick_start.cpp -->".
# Usage: cmake -DREADME=<README.md> -DEXAMPLE=<quick_start.cpp> -P readme_snippet.cmake
file(READ "${README}" readme)
file(READ "${EXAMPLE}" example)
set(marker "<!-- examples/quick_start.cpp -->\n```cpp\n")
string(FIND "${readme}" "${marker}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md has no quick start block after '<!-- examples/quick_start.cpp -->'")
endif()
string(LENGTH "${marker}" marker_len)
math(EXPR begin "${at} + ${marker_len}")
string(SUBSTRING "${readme}" ${begin} -1 rest)
string(FIND "${rest}" "```\n" end)
if(end EQUAL -1)
  message(FATAL_ERROR "README.md: the quick start block is not closed")
endif()
string(SUBSTRING "${rest}" 0 ${end} snippet)
if(NOT snippet STREQUAL example)
  file(WRITE "${CMAKE_CURRENT_BINARY_DIR}/readme_quick_start.cpp" "${snippet}")
  message(FATAL_ERROR "README.md's quick start differs from ${EXAMPLE}; "
          "the README version is in ${CMAKE_CURRENT_BINARY_DIR}/readme_quick_start.cpp")
endif()
message(STATUS "README quick start matches ${EXAMPLE}")
