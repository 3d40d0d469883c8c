# Install and export rules: headers, the smart_ratelimit::smart_ratelimit target
# (plus every adapter target that was defined), a CMake package config with a
# version file, FindSOCI.cmake for consumers of the SOCI adapter, and pkg-config.
include(CMakePackageConfigHelpers)

install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_srl_targets smart_ratelimit)
foreach(_a soci beast redis smtp)
  if(TARGET smart_ratelimit_${_a})
    list(APPEND _srl_targets smart_ratelimit_${_a})
  endif()
endforeach()
install(TARGETS ${_srl_targets} EXPORT smart_ratelimitTargets)

set(_srl_cmakedir ${CMAKE_INSTALL_DATADIR}/cmake/smart_ratelimit)
install(EXPORT smart_ratelimitTargets NAMESPACE smart_ratelimit:: DESTINATION ${_srl_cmakedir})
configure_package_config_file(cmake/smart_ratelimitConfig.cmake.in
    ${PROJECT_BINARY_DIR}/smart_ratelimitConfig.cmake INSTALL_DESTINATION ${_srl_cmakedir})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/smart_ratelimitConfigVersion.cmake
    COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/smart_ratelimitConfig.cmake
              ${PROJECT_BINARY_DIR}/smart_ratelimitConfigVersion.cmake
              cmake/FindSOCI.cmake
        DESTINATION ${_srl_cmakedir})

configure_file(cmake/smart_ratelimit.pc.in ${PROJECT_BINARY_DIR}/smart_ratelimit.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/smart_ratelimit.pc DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)
