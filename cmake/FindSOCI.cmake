# FindSOCI: locates SOCI 4.x (Debian's libsoci-dev ships no CMake config).
# Components: the backends to find (sqlite3, postgresql, mysql, odbc, firebird).
# Defines SOCI_FOUND, SOCI_INCLUDE_DIRS, SOCI_VERSION, the imported target
# SOCI::core and one SOCI::<backend> target per component found.
include(FindPackageHandleStandardArgs)

find_path(SOCI_INCLUDE_DIR NAMES soci/soci.h)
find_library(SOCI_CORE_LIBRARY NAMES soci_core)

if(SOCI_INCLUDE_DIR AND EXISTS "${SOCI_INCLUDE_DIR}/soci/version.h")
  file(STRINGS "${SOCI_INCLUDE_DIR}/soci/version.h" _soci_ver REGEX "^#define SOCI_VERSION [0-9]+")
  string(REGEX MATCH "[0-9]+" _soci_num "${_soci_ver}")
  if(_soci_num)
    math(EXPR _major "${_soci_num} / 100000")
    math(EXPR _minor "${_soci_num} / 100 % 1000")
    math(EXPR _patch "${_soci_num} % 100")
    set(SOCI_VERSION "${_major}.${_minor}.${_patch}")
  endif()
endif()

set(_soci_backend_deps_sqlite3 SQLite3)
set(_soci_backend_deps_postgresql PostgreSQL)
foreach(_comp IN LISTS SOCI_FIND_COMPONENTS)
  find_library(SOCI_${_comp}_LIBRARY NAMES soci_${_comp})
  if(SOCI_${_comp}_LIBRARY)
    set(SOCI_${_comp}_FOUND TRUE)
  endif()
endforeach()

find_package_handle_standard_args(SOCI
  REQUIRED_VARS SOCI_CORE_LIBRARY SOCI_INCLUDE_DIR
  VERSION_VAR SOCI_VERSION
  HANDLE_COMPONENTS)

if(SOCI_FOUND)
  set(SOCI_INCLUDE_DIRS "${SOCI_INCLUDE_DIR}")
  if(NOT TARGET SOCI::core)
    add_library(SOCI::core UNKNOWN IMPORTED)
    set_target_properties(SOCI::core PROPERTIES
      IMPORTED_LOCATION "${SOCI_CORE_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${SOCI_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${CMAKE_DL_LIBS}")
  endif()
  foreach(_comp IN LISTS SOCI_FIND_COMPONENTS)
    if(SOCI_${_comp}_FOUND AND NOT TARGET SOCI::${_comp})
      add_library(SOCI::${_comp} UNKNOWN IMPORTED)
      set_target_properties(SOCI::${_comp} PROPERTIES
        IMPORTED_LOCATION "${SOCI_${_comp}_LIBRARY}"
        INTERFACE_LINK_LIBRARIES SOCI::core)
      if(_comp STREQUAL "postgresql")
        find_path(SOCI_PQ_INCLUDE_DIR NAMES libpq-fe.h PATH_SUFFIXES postgresql)
        if(SOCI_PQ_INCLUDE_DIR)
          set_property(TARGET SOCI::${_comp} APPEND PROPERTY
            INTERFACE_INCLUDE_DIRECTORIES "${SOCI_PQ_INCLUDE_DIR}")
        endif()
        # The event store calls libpq directly (COPY) through SOCI's PGconn.
        find_library(SOCI_PQ_LIBRARY NAMES pq)
        if(SOCI_PQ_LIBRARY)
          set_property(TARGET SOCI::${_comp} APPEND PROPERTY INTERFACE_LINK_LIBRARIES "${SOCI_PQ_LIBRARY}")
        endif()
      elseif(_comp STREQUAL "sqlite3")
        # The event store calls the sqlite3 C API directly through SOCI's handle.
        find_library(SOCI_SQLITE3_ENGINE_LIBRARY NAMES sqlite3)
        if(SOCI_SQLITE3_ENGINE_LIBRARY)
          set_property(TARGET SOCI::${_comp} APPEND PROPERTY
            INTERFACE_LINK_LIBRARIES "${SOCI_SQLITE3_ENGINE_LIBRARY}")
        endif()
      endif()
    endif()
  endforeach()
endif()
mark_as_advanced(SOCI_INCLUDE_DIR SOCI_CORE_LIBRARY)
