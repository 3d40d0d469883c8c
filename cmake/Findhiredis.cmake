# Findhiredis: locates the hiredis C client (Debian's libhiredis-dev ships a CMake
# config without a usable target, so this module asks pkg-config first and falls
# back to a plain header/library search). Defines hiredis_FOUND, hiredis_VERSION
# and the imported target hiredis::hiredis; an existing hiredis::hiredis is reused.
include(FindPackageHandleStandardArgs)

if(TARGET hiredis::hiredis)
  set(hiredis_FOUND TRUE)
  return()
endif()

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_HIREDIS QUIET hiredis)
endif()
find_path(HIREDIS_INCLUDE_DIR NAMES hiredis/hiredis.h HINTS ${PC_HIREDIS_INCLUDE_DIRS})
find_library(HIREDIS_LIBRARY NAMES hiredis HINTS ${PC_HIREDIS_LIBRARY_DIRS})
set(hiredis_VERSION "${PC_HIREDIS_VERSION}")

find_package_handle_standard_args(hiredis
  REQUIRED_VARS HIREDIS_LIBRARY HIREDIS_INCLUDE_DIR
  VERSION_VAR hiredis_VERSION)

if(hiredis_FOUND)
  add_library(hiredis::hiredis UNKNOWN IMPORTED)
  set_target_properties(hiredis::hiredis PROPERTIES
    IMPORTED_LOCATION "${HIREDIS_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIR}")
endif()
mark_as_advanced(HIREDIS_INCLUDE_DIR HIREDIS_LIBRARY)
