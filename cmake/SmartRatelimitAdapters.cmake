# Defines the opt-in adapter targets. Each one is an INTERFACE target over the core
# plus the third-party library it wraps; it is defined only when that library is
# found, so a consumer that lacks SOCI or Boost still gets the core. The installed
# package config (smart_ratelimitConfig.cmake.in) repeats these look-ups.

if(SMART_RATELIMIT_WITH_SOCI)
  find_package(SOCI MODULE OPTIONAL_COMPONENTS sqlite3 postgresql)
  if(SOCI_FOUND)
    add_library(smart_ratelimit_soci INTERFACE)
    add_library(smart_ratelimit::soci ALIAS smart_ratelimit_soci)
    set_target_properties(smart_ratelimit_soci PROPERTIES EXPORT_NAME soci)
    target_link_libraries(smart_ratelimit_soci INTERFACE smart_ratelimit SOCI::core
                          $<TARGET_NAME_IF_EXISTS:SOCI::sqlite3> $<TARGET_NAME_IF_EXISTS:SOCI::postgresql>)
  endif()
endif()

if(SMART_RATELIMIT_WITH_BEAST)
  find_package(Boost 1.81 CONFIG COMPONENTS json url)
  if(Boost_FOUND)
    find_package(OpenSSL)
    add_library(smart_ratelimit_beast INTERFACE)
    add_library(smart_ratelimit::beast ALIAS smart_ratelimit_beast)
    set_target_properties(smart_ratelimit_beast PROPERTIES EXPORT_NAME beast)
    target_link_libraries(smart_ratelimit_beast INTERFACE smart_ratelimit
                          Boost::headers Boost::json Boost::url
                          $<TARGET_NAME_IF_EXISTS:OpenSSL::SSL> $<TARGET_NAME_IF_EXISTS:OpenSSL::Crypto>)
  endif()
endif()

if(SMART_RATELIMIT_WITH_REDIS)
  find_package(hiredis MODULE)
  if(hiredis_FOUND)
    add_library(smart_ratelimit_redis INTERFACE)
    add_library(smart_ratelimit::redis ALIAS smart_ratelimit_redis)
    set_target_properties(smart_ratelimit_redis PROPERTIES EXPORT_NAME redis)
    target_link_libraries(smart_ratelimit_redis INTERFACE smart_ratelimit hiredis::hiredis)
  endif()
endif()

if(SMART_RATELIMIT_WITH_SMTP)
  find_package(CURL)
  if(CURL_FOUND)
    add_library(smart_ratelimit_smtp INTERFACE)
    add_library(smart_ratelimit::smtp ALIAS smart_ratelimit_smtp)
    set_target_properties(smart_ratelimit_smtp PROPERTIES EXPORT_NAME smtp)
    target_link_libraries(smart_ratelimit_smtp INTERFACE smart_ratelimit CURL::libcurl)
  endif()
endif()
