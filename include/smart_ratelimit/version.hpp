// smart_ratelimit/version.hpp
// The library's version, as macros (for the preprocessor) and as constants. The
// source of truth is the top-level VERSION file (read by CMake and Meson); a test
// (tests/tools, "version: ...") fails when these numbers and that file disagree.
#pragma once

#define SMART_RATELIMIT_VERSION_MAJOR 0
#define SMART_RATELIMIT_VERSION_MINOR 1
#define SMART_RATELIMIT_VERSION_PATCH 0

namespace smart_ratelimit {
inline constexpr int version_major = SMART_RATELIMIT_VERSION_MAJOR;
inline constexpr int version_minor = SMART_RATELIMIT_VERSION_MINOR;
inline constexpr int version_patch = SMART_RATELIMIT_VERSION_PATCH;
inline constexpr const char* version_string = "0.1.0";
}  // namespace smart_ratelimit
