# Install and export rules: headers, the smart_ratelimit::smart_ratelimit target
# (plus every adapter target that was defined, each a package component), a CMake
# package config with a version file, the find modules the adapters need
# (FindSOCI, Findhiredis), and a relocatable pkg-config file for the core.
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_srl_targets smart_ratelimit)
set(SMART_RATELIMIT_EXPORTED_ADAPTERS "")
foreach(_a soci beast redis smtp)
  if(TARGET smart_ratelimit_${_a})
    list(APPEND _srl_targets smart_ratelimit_${_a})
    list(APPEND SMART_RATELIMIT_EXPORTED_ADAPTERS ${_a})
  endif()
endforeach()
install(TARGETS ${_srl_targets} EXPORT smart_ratelimitTargets)

# Header-only and architecture-independent: the package lives under share/.
set(_srl_cmakedir ${CMAKE_INSTALL_DATADIR}/cmake/smart_ratelimit)
install(EXPORT smart_ratelimitTargets NAMESPACE smart_ratelimit:: DESTINATION ${_srl_cmakedir})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/smart_ratelimitConfig.cmake.in
    ${PROJECT_BINARY_DIR}/smart_ratelimitConfig.cmake INSTALL_DESTINATION ${_srl_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/smart_ratelimitConfigVersion.cmake
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/smart_ratelimitConfig.cmake
              ${PROJECT_BINARY_DIR}/smart_ratelimitConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindSOCI.cmake
              ${PROJECT_SOURCE_DIR}/cmake/Findhiredis.cmake
        DESTINATION ${_srl_cmakedir})

# The .pc file finds its prefix from its own location, so `cmake --install --prefix`
# and staged installs stay correct.
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SRL_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(SRL_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/smart_ratelimit.pc.in
               ${PROJECT_BINARY_DIR}/smart_ratelimit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/smart_ratelimit.pc DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
