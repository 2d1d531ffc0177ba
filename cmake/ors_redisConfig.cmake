# CMake package config for ors-redis, used straight from the source tree:
#
#   find_package(ors_redis 0.1 CONFIG REQUIRED PATHS <repo>/cmake)
#   # or: cmake -Dors_redis_DIR=<repo>/cmake ...
#   target_link_libraries(app PRIVATE ors_redis::ors_redis)
#
# (An installed ors-redis has a config of its own, which builds nothing:
# cmake/templates/ors_redisConfig.cmake.in, installed by cmake/CMakeLists.txt.)
#
# The Rust library is built with cargo: once at configure time when it is
# missing, and at every build through the target ors_redis_cargo_build (cargo
# is incremental, so an up-to-date build costs a second). Executables load
# libors_redis.so.0 (the SONAME set by the Rust build) from the build RPATH,
# so the symlink target/release/libors_redis.so.0 -> libors_redis.so is made
# next to the library.
#
# Inputs (cache or normal variables, else environment):
#   CARGO                 the cargo binary (default: cargo on PATH or in ~/.cargo/bin)
#   ORS_REDIS_TARGET_DIR  cargo's target directory (default <repo>/target)
#   ORS_REDIS_CARGO_FEATURES  cargo features, e.g. "cli" to build the operator
#                         command ors-redis too (the library is the same)
# Outputs:
#   ors_redis::ors_redis  IMPORTED SHARED target (GLOBAL)
#   ors_redis_ROOT, ors_redis_INCLUDE_DIR, ors_redis_LIBRARY
#   ors_redis_COMMAND     target/release/ors-redis (with the cli feature)

if(TARGET ors_redis::ors_redis)
  # Found before (GLOBAL target): just hand out the variables again.
  get_filename_component(ors_redis_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
  get_target_property(ors_redis_LIBRARY ors_redis::ors_redis IMPORTED_LOCATION)
  get_target_property(ors_redis_INCLUDE_DIR ors_redis::ors_redis INTERFACE_INCLUDE_DIRECTORIES)
  return()
endif()

if(CMAKE_VERSION VERSION_LESS 3.16)
  set(ors_redis_FOUND FALSE)
  set(ors_redis_NOT_FOUND_MESSAGE "ors_redis needs CMake 3.16 or newer (this is ${CMAKE_VERSION})")
  return()
endif()

cmake_policy(PUSH)
cmake_policy(VERSION 3.16)

get_filename_component(ors_redis_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(ors_redis_INCLUDE_DIR "${ors_redis_ROOT}/include")

# The cargo binary: CARGO variable, then $CARGO (cargo sets it for its children),
# then PATH and the rustup default location.
if(NOT CARGO AND DEFINED ENV{CARGO} AND NOT "$ENV{CARGO}" STREQUAL "")
  set(CARGO "$ENV{CARGO}")
endif()
if(NOT CARGO)
  set(_ors_redis_cargo_hints "")
  if(DEFINED ENV{CARGO_HOME})
    list(APPEND _ors_redis_cargo_hints "$ENV{CARGO_HOME}/bin")
  endif()
  if(DEFINED ENV{HOME})
    list(APPEND _ors_redis_cargo_hints "$ENV{HOME}/.cargo/bin")
  endif()
  find_program(ORS_REDIS_CARGO_EXECUTABLE NAMES cargo HINTS ${_ors_redis_cargo_hints})
  unset(_ors_redis_cargo_hints)
  if(ORS_REDIS_CARGO_EXECUTABLE)
    set(CARGO "${ORS_REDIS_CARGO_EXECUTABLE}")
  endif()
endif()
if(NOT CARGO)
  set(ors_redis_FOUND FALSE)
  set(ors_redis_NOT_FOUND_MESSAGE
      "cargo not found: install Rust (https://rustup.rs) or pass -DCARGO=/path/to/cargo")
  cmake_policy(POP)
  return()
endif()

if(NOT ORS_REDIS_TARGET_DIR)
  if(DEFINED ENV{ORS_REDIS_TARGET_DIR} AND NOT "$ENV{ORS_REDIS_TARGET_DIR}" STREQUAL "")
    set(ORS_REDIS_TARGET_DIR "$ENV{ORS_REDIS_TARGET_DIR}")
  else()
    set(ORS_REDIS_TARGET_DIR "${ors_redis_ROOT}/target")
  endif()
endif()

set(ors_redis_LIBRARY "${ORS_REDIS_TARGET_DIR}/release/libors_redis.so")
set(_ors_redis_soname "libors_redis.so.0")
set(_ors_redis_solink "${ORS_REDIS_TARGET_DIR}/release/${_ors_redis_soname}")
# --target-dir: a CARGO_TARGET_DIR in the environment must not move the library.
set(_ors_redis_cargo_args
    build --release
    --manifest-path "${ors_redis_ROOT}/Cargo.toml"
    --target-dir "${ORS_REDIS_TARGET_DIR}")
set(ors_redis_COMMAND "")
if(ORS_REDIS_CARGO_FEATURES)
  string(REPLACE ";" "," _ors_redis_features "${ORS_REDIS_CARGO_FEATURES}")
  list(APPEND _ors_redis_cargo_args --features "${_ors_redis_features}")
  if(_ors_redis_features MATCHES "(^|,)cli(,|$)")
    set(ors_redis_COMMAND "${ORS_REDIS_TARGET_DIR}/release/ors-redis")
  endif()
  unset(_ors_redis_features)
endif()

if(NOT EXISTS "${ors_redis_LIBRARY}" OR NOT EXISTS "${ors_redis_INCLUDE_DIR}/ors_redis.h"
   OR (ors_redis_COMMAND AND NOT EXISTS "${ors_redis_COMMAND}"))
  message(STATUS "ors_redis: building the Rust library (${CARGO} build --release)")
  execute_process(
    COMMAND "${CARGO}" ${_ors_redis_cargo_args}
    WORKING_DIRECTORY "${ors_redis_ROOT}"
    RESULT_VARIABLE _ors_redis_result)
  if(NOT _ors_redis_result EQUAL 0 OR NOT EXISTS "${ors_redis_LIBRARY}")
    set(ors_redis_FOUND FALSE)
    set(ors_redis_NOT_FOUND_MESSAGE
        "cargo build --release failed (${_ors_redis_result}) or did not produce ${ors_redis_LIBRARY}")
    unset(_ors_redis_result)
    cmake_policy(POP)
    return()
  endif()
  unset(_ors_redis_result)
endif()
file(CREATE_LINK "libors_redis.so" "${_ors_redis_solink}" SYMBOLIC)

# Always out of date: cargo decides what to rebuild.
if(NOT TARGET ors_redis_cargo_build)
  add_custom_target(ors_redis_cargo_build
    COMMAND "${CARGO}" ${_ors_redis_cargo_args}
    COMMAND "${CMAKE_COMMAND}" -E create_symlink libors_redis.so "${_ors_redis_solink}"
    WORKING_DIRECTORY "${ors_redis_ROOT}"
    BYPRODUCTS "${ors_redis_LIBRARY}" "${_ors_redis_solink}" ${ors_redis_COMMAND}
    COMMENT "Building ors_redis with cargo"
    USES_TERMINAL
    VERBATIM)
endif()

add_library(ors_redis::ors_redis SHARED IMPORTED GLOBAL)
set_target_properties(ors_redis::ors_redis PROPERTIES
  IMPORTED_LOCATION "${ors_redis_LIBRARY}"
  IMPORTED_SONAME "${_ors_redis_soname}"
  INTERFACE_INCLUDE_DIRECTORIES "${ors_redis_INCLUDE_DIR}")
add_dependencies(ors_redis::ors_redis ors_redis_cargo_build)

unset(_ors_redis_soname)
unset(_ors_redis_solink)
unset(_ors_redis_cargo_args)

if(NOT ors_redis_FIND_QUIETLY)
  message(STATUS "ors_redis: ${ors_redis_LIBRARY} (headers in ${ors_redis_INCLUDE_DIR})")
endif()

cmake_policy(POP)
