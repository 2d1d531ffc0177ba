# CMake toolchain file: cross-compile for x86_64 Windows with Debian's
# mingw-w64 (gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64).
#   cmake -DCMAKE_TOOLCHAIN_FILE=<repo>/cmake/mingw-w64-x86_64.cmake ...
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(_ors_mingw x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${_ors_mingw}-gcc)
set(CMAKE_CXX_COMPILER ${_ors_mingw}-g++)
set(CMAKE_RC_COMPILER ${_ors_mingw}-windres)
# Programs built here link libgcc and libstdc++ statically, so that they run
# with nothing beside them but ors_redis.dll (as the DLL itself does).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc -static-libstdc++")
# Find headers and libraries for Windows only, programs on the build host.
set(CMAKE_FIND_ROOT_PATH /usr/${_ors_mingw})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
