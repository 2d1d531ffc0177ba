#!/usr/bin/env bash
# The CMake package of ors-redis for a Windows consumer, built on Linux with
# mingw's toolchain and run under wine (run-wine-tests.sh calls this):
#   - cmake/CMakeLists.txt installs target/windows: bin/ors_redis.dll,
#     lib/ors_redis.lib, lib/libors_redis.dll.a, lib/ors_redis.def, headers,
#     CMake package, pkg-config file, and nothing else;
#   - ors_redis::ors_redis carries IMPORTED_IMPLIB: libors_redis.dll.a for a
#     mingw consumer, ors_redis.lib for any other (MSVC, clang-cl);
#   - c_tests/package/ (the C++ wrapper, find_package) copied out of the
#     repository, built with cmake/mingw-w64-x86_64.cmake, run under wine with
#     the installed bin/ on its PATH, against the cluster in ORS_WIN_NODES.
#
# Environment: ORS_WIN_NODES, WINEPREFIX, ORS_WIN_STANDIN (folder holding
# the test-only bcryptprimitives.dll stand-in).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
TOOLCHAIN=$REPO/cmake/mingw-w64-x86_64.cmake
DLL=$REPO/target/windows/bin/ors_redis.dll
work=$(mktemp -d "${TMPDIR:-/tmp}/ors-redis-winpkg.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=c_tests/checks.sh
. "$REPO/c_tests/checks.sh"

prefix=$work/prefix
if ! quiet cmake -S "$REPO/cmake" -B "$work/build" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DORS_REDIS_LIBRARY="$DLL" ||
    ! quiet cmake --build "$work/build" || ! quiet cmake --install "$work/build" --prefix "$prefix"; then
    fail "configure, build and install cmake/CMakeLists.txt for Windows"
    echo "$passed passed, $failed failed"
    exit 1
fi
ok "cmake -S cmake (mingw toolchain, ORS_REDIS_LIBRARY=ors_redis.dll), --build, --install"
for f in bin/ors_redis.dll lib/ors_redis.lib lib/libors_redis.dll.a lib/ors_redis.def include/ors_redis.h \
    include/ors_redis.hpp lib/cmake/ors_redis/ors_redisConfig.cmake lib/cmake/ors_redis/ors_redisConfigVersion.cmake \
    lib/pkgconfig/ors_redis.pc; do
    check "$f installed" test -s "$prefix/$f"
done
check "nothing else installed (9 files: no .so, no links)" test "$(find "$prefix" ! -type d | wc -l)" -eq 9
check "the installed DLL is the one windows-build.sh checked" cmp -s "$prefix/bin/ors_redis.dll" "$DLL"

# What find_package hands each kind of consumer.
probe=$work/implib-probe
mkdir -p "$probe"
cat >"$probe/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(implib_probe LANGUAGES C)
if(AS_MSVC)
  unset(MINGW) # the package's choice for a consumer that is not mingw
endif()
find_package(ors_redis 0.1 CONFIG REQUIRED)
get_target_property(loc ors_redis::ors_redis IMPORTED_LOCATION)
get_target_property(implib ors_redis::ors_redis IMPORTED_IMPLIB)
message(STATUS "PROBE location=${loc} implib=${implib}")
CMAKE
for kind in mingw msvc; do
    want=$prefix/lib/libors_redis.dll.a
    [[ $kind == msvc ]] && want=$prefix/lib/ors_redis.lib
    as_msvc=$([[ $kind == msvc ]] && echo ON || echo OFF)
    got=$(cmake -S "$probe" -B "$probe/build-$kind" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
        -DCMAKE_PREFIX_PATH="$prefix" -DAS_MSVC=$as_msvc 2>&1 | sed -n 's/^-- PROBE //p')
    check "$kind consumer: IMPORTED_LOCATION bin/ors_redis.dll, IMPORTED_IMPLIB $(basename "$want") ($got)" \
        test "$got" = "location=$prefix/bin/ors_redis.dll implib=$want"
done

# The source-tree config builds for the host with cargo: it must refuse a
# Windows toolchain and point to the Windows build instead.
msg=$(cmake -S "$probe" -B "$probe/build-tree" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
    -Dors_redis_DIR="$REPO/cmake" 2>&1 || true)
check "the source-tree package config refuses a Windows toolchain and names windows-build.sh" \
    grep -q "for Windows, build with cmake/windows-build.sh" <<<"$msg"

src=$work/consumer-src
cp -R "$REPO/c_tests/package" "$src"
if quiet cmake -S "$src" -B "$work/consumer" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_PREFIX_PATH="$prefix" &&
    quiet cmake --build "$work/consumer"; then
    ok "c_tests/package (C++ wrapper, find_package) built with the mingw toolchain outside the repository"
    exe=$work/consumer/package_consumer.exe
    deps=$(x86_64-w64-mingw32-objdump -p "$exe" | sed -n 's/^\s*DLL Name: //p' | tr '\n' ' ')
    check "package_consumer.exe imports ors_redis.dll and system DLLs only ($deps)" \
        bash -c "grep -q ors_redis.dll <<<'$deps' && ! grep -qiE 'libgcc|winpthread|libstdc' <<<'$deps'"
    # As on Windows: the DLL found through PATH, from the installed bin/.
    if (cd "$work/consumer" && WINEPATH="Z:$prefix/bin;Z:${ORS_WIN_STANDIN:?}" ORS_TEST_NODES=${ORS_WIN_NODES:?} \
        timeout 120 wine package_consumer.exe >"$work/run.log" 2>&1); then
        ok "package_consumer.exe runs under wine with bin/ on PATH (put, get, del, versions agree)"
    else
        fail "package_consumer.exe under wine"
        sed 's/^/#   /' "$work/run.log"
    fi
else
    fail "c_tests/package with the mingw toolchain: configure or build failed"
fi

echo "$passed passed, $failed failed"
((failed == 0))
