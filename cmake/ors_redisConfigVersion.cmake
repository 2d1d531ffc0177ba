# Version file for the ors_redis package config (SameMajorVersion): a request
# for X.Y is satisfied by 0.1.0 when X is 0 and X.Y <= 0.1.0. Keep PACKAGE_VERSION
# in step with Cargo.toml.

set(PACKAGE_VERSION "0.1.0")
set(_ors_redis_major "0")

if(PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(PACKAGE_FIND_VERSION_RANGE)
  # Both ends of a range (CMake 3.19+) must name this major version.
  math(EXPR _ors_redis_major_next "${_ors_redis_major} + 1")
  if(NOT PACKAGE_FIND_VERSION_MIN_MAJOR STREQUAL _ors_redis_major
      OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "INCLUDE"
          AND NOT PACKAGE_FIND_VERSION_MAX_MAJOR STREQUAL _ors_redis_major)
      OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "EXCLUDE"
          AND NOT PACKAGE_FIND_VERSION_MAX VERSION_LESS_EQUAL _ors_redis_major_next))
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  elseif((PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "INCLUDE"
          AND PACKAGE_VERSION VERSION_LESS_EQUAL PACKAGE_FIND_VERSION_MAX)
      OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "EXCLUDE"
          AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION_MAX))
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  unset(_ors_redis_major_next)
else()
  if(NOT PACKAGE_FIND_VERSION OR PACKAGE_FIND_VERSION_MAJOR STREQUAL _ors_redis_major)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  else()
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()

unset(_ors_redis_major)
