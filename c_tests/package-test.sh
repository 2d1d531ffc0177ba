#!/usr/bin/env bash
# Installs ors-redis with cmake/CMakeLists.txt into a throwaway prefix and
# uses it the way an integrator would, outside the repository:
#   - the installed tree: versioned library, SONAME and development links,
#     headers, CMake package and version file, pkg-config file;
#   - a DESTDIR staged install (what distribution packaging does);
#   - c_tests/package/ copied out of the repository and built with
#     find_package(ors_redis 0.1 CONFIG REQUIRED), then run on the cluster;
#     asking for an incompatible version must fail;
#   - the same program built with `pkg-config --cflags --libs ors_redis`, run;
#   - the CMake package still works after the prefix is moved.
#
#   c_tests/package-test.sh [--library PATH]
#
# --library installs that prebuilt libors_redis.so (e.g. the portable build)
# instead of letting the package build one with cargo. Environment:
# ORS_TEST_NODES (the cluster, as for every test), CARGO, CXX (default c++).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
library=
if [[ "${1:-}" == --library ]]; then
    library=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
elif (($# > 0)); then
    echo "usage: $0 [--library PATH]" >&2
    exit 2
fi
CXX=${CXX:-c++}
export ORS_TEST_NODES=${ORS_TEST_NODES:-127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002}

work=$(mktemp -d "${TMPDIR:-/tmp}/ors-redis-package.XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
# Runs a command quietly; its output is shown only when it fails.
quiet() {
    local log=$work/last.log
    if "$@" >"$log" 2>&1; then return 0; fi
    sed 's/^/#   /' "$log"
    return 1
}

version=$(sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' "$REPO/Cargo.toml" | head -n 1)
major=${version%%.*}
prefix=$work/prefix

echo "# ors-redis $version: install into $prefix${library:+ (prebuilt $library)}"
configure=(cmake -S "$REPO/cmake" -B "$work/build")
[[ -n "$library" ]] && configure+=(-DORS_REDIS_LIBRARY="$library")
[[ -n "${CARGO:-}" ]] && configure+=(-DCARGO="$CARGO")
if ! quiet "${configure[@]}" || ! quiet cmake --build "$work/build" ||
    ! quiet cmake --install "$work/build" --prefix "$prefix"; then
    fail "configure, build and install cmake/CMakeLists.txt"
    echo "$passed passed, $failed failed"
    exit 1
fi
ok "cmake -S cmake, --build, --install --prefix"

lib=$prefix/lib
check "lib/libors_redis.so.$version is a file" test -f "$lib/libors_redis.so.$version" -a ! -L "$lib/libors_redis.so.$version"
check "lib/libors_redis.so.$major -> libors_redis.so.$version" \
    test "$(readlink "$lib/libors_redis.so.$major")" = "libors_redis.so.$version"
check "lib/libors_redis.so -> libors_redis.so.$major" test "$(readlink "$lib/libors_redis.so")" = "libors_redis.so.$major"
soname=$(readelf -d "$lib/libors_redis.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
check "the installed library's SONAME is libors_redis.so.$major (got '$soname')" test "$soname" = "libors_redis.so.$major"
for f in include/ors_redis.h include/ors_redis.hpp lib/cmake/ors_redis/ors_redisConfig.cmake \
    lib/cmake/ors_redis/ors_redisConfigVersion.cmake lib/pkgconfig/ors_redis.pc; do
    check "$f installed" test -s "$prefix/$f"
done
check "the installed header is the repository's" cmp -s "$prefix/include/ors_redis.h" "$REPO/include/ors_redis.h"
if [[ -n "$library" ]]; then
    check "the installed library is the prebuilt one" cmp -s "$lib/libors_redis.so.$version" "$library"
fi
check "bin/ors-redis installed and runs" test "$("$prefix/bin/ors-redis" --version)" = "ors-redis $version"
check "nothing else installed (9 files and links)" test "$(find "$prefix" ! -type d | wc -l)" -eq 9

# DESTDIR: files go under the stage, paths inside them name the final prefix.
stage=$work/stage
if quiet env DESTDIR="$stage" cmake --install "$work/build" --prefix /usr/local; then
    check "DESTDIR install puts the library under the stage" test -f "$stage/usr/local/lib/libors_redis.so.$version"
    check "DESTDIR install: ors_redis.pc names the final prefix" grep -qx 'prefix=/usr/local' "$stage/usr/local/lib/pkgconfig/ors_redis.pc"
else
    fail "DESTDIR=... cmake --install --prefix /usr/local"
fi

# Links the consumer against the installed library (not target/release), and runs it.
run_consumer() { # run_consumer HOW BINARY LIBDIR
    local how=$1 bin=$2 libdir=$3 loaded
    loaded=$(ldd "$bin" | awk '$1 == "libors_redis.so.'"$major"'" {print $3}')
    check "$how: the program loads $loaded" test "$loaded" = "$libdir/libors_redis.so.$major"
    if quiet "$bin"; then ok "$how: the program runs on the cluster (put, get, del, versions agree)"; else fail "$how: the program failed"; fi
}

src=$work/consumer-src
cp -R "$HERE/package" "$src"
if quiet cmake -S "$src" -B "$work/consumer-cmake" -DCMAKE_PREFIX_PATH="$prefix" &&
    quiet cmake --build "$work/consumer-cmake"; then
    ok "find_package(ors_redis 0.1 CONFIG REQUIRED): configured and built outside the repository"
    run_consumer "find_package" "$work/consumer-cmake/package_consumer" "$lib"
else
    fail "find_package(ors_redis 0.1 CONFIG REQUIRED): configure or build failed"
fi
minor=${version#*.}
minor=${minor%%.*}
for wrong in "$((major + 1)).0" "$major.$((minor + 1))"; do
    if cmake -S "$src" -B "$work/consumer-wrong" -DCMAKE_PREFIX_PATH="$prefix" -DORS_REDIS_FIND_VERSION="$wrong" \
        >"$work/wrong.log" 2>&1; then
        fail "find_package(ors_redis $wrong) should fail against $version"
    elif grep -q "ors_redisConfig.cmake, version: $version" "$work/wrong.log"; then
        ok "find_package(ors_redis $wrong) refuses $version (SameMajorVersion)"
    else
        fail "find_package(ors_redis $wrong) failed, but not on the version"
        sed 's/^/#   /' "$work/wrong.log"
    fi
    rm -rf "$work/consumer-wrong"
done

export PKG_CONFIG_PATH=$lib/pkgconfig
check "pkg-config --validate ors_redis" pkg-config --validate ors_redis
check "pkg-config --modversion ors_redis is $version" test "$(pkg-config --modversion ors_redis)" = "$version"
# shellcheck disable=SC2207 # pkg-config output is a list of flags, split on purpose
flags=($(pkg-config --cflags --libs ors_redis))
rpath=$(pkg-config --variable=libdir ors_redis)
if quiet "$CXX" -std=c++11 -Wall -Wextra -Wpedantic -Werror "-DORS_PACKAGE_VERSION=\"$(pkg-config --modversion ors_redis)\"" \
    "$src/package_consumer.cpp" -o "$work/consumer-pc" "${flags[@]}" "-Wl,-rpath,$rpath"; then
    ok "pkg-config --cflags --libs ors_redis: built (${flags[*]})"
    run_consumer "pkg-config" "$work/consumer-pc" "$lib"
else
    fail "pkg-config --cflags --libs ors_redis: build failed"
fi

# The CMake package is relocatable: move the whole tree, configure again.
mv "$prefix" "$work/moved"
if quiet cmake -S "$src" -B "$work/consumer-moved" -DCMAKE_PREFIX_PATH="$work/moved" &&
    quiet cmake --build "$work/consumer-moved"; then
    run_consumer "moved prefix" "$work/consumer-moved/package_consumer" "$work/moved/lib"
else
    fail "find_package after moving the installed tree"
fi

echo "$passed passed, $failed failed"
((failed == 0))
