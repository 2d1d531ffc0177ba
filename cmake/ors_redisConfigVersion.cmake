# Version file for the source-tree ors_redis package config (SameMajorVersion):
# a request for X.Y is satisfied by version V when X is V's major and X.Y <= V.
# The version is read from Cargo.toml beside this folder, its only home.
# (The installed package gets a version file of its own: cmake/CMakeLists.txt.)

file(STRINGS "${CMAKE_CURRENT_LIST_DIR}/../Cargo.toml" PACKAGE_VERSION
     REGEX "^version *= *\"[0-9]+\\.[0-9]+\\.[0-9]+\"" LIMIT_COUNT 1)
string(REGEX REPLACE "^version *= *\"([^\"]*)\".*" "\\1" PACKAGE_VERSION "${PACKAGE_VERSION}")
if(NOT PACKAGE_VERSION MATCHES "^[0-9]+\\.[0-9]+\\.[0-9]+$")
  set(PACKAGE_VERSION "unknown")
  set(PACKAGE_VERSION_UNSUITABLE TRUE)
  return()
endif()
string(REGEX REPLACE "\\..*" "" _ors_redis_major "${PACKAGE_VERSION}")

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
