#!/usr/bin/env bash
# Builds the portable release: libors_redis.so (and the ors-redis operator
# command) linked against glibc 2.17 symbol versions, so that they load on
# the older enterprise Linux hosts ORS runs on (RHEL/CentOS 7 and later),
# whatever glibc the build machine has. Uses cargo-zigbuild, with zig as the
# C compiler and linker (ring's C and assembly included).
#
#   cmake/portable-build.sh [--test]
#     -> target/x86_64-unknown-linux-gnu/release/libors_redis.so
#        target/x86_64-unknown-linux-gnu/release/ors-redis
#
# --test also runs the library's unit tests built the same way (zig's libc
# stubs and unwinder: the panic boundary test proves that a panic is still
# caught at the C boundary). About 3 minutes more: dev-dependencies change
# the features of some dependencies, so they build again.
#
# Installs what is missing first: cargo-zigbuild and zig (PyPI packages
# cargo-zigbuild and ziglang, pinned below) into a virtualenv under
# ORS_PORTABLE_TOOLS (default target/portable-tools); a cargo-zigbuild and zig
# already on PATH are used as they are. Then checks the result with
# cmake/check-glibc.sh. Install it with
#   cmake -S cmake -B target/cmake-portable -DORS_REDIS_LIBRARY=target/x86_64-unknown-linux-gnu/release/libors_redis.so
#   cmake --install target/cmake-portable --prefix /opt/ors-redis
#
# Environment: ORS_PORTABLE_GLIBC (default 2.17), ORS_PORTABLE_TOOLS, CARGO.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"

GLIBC=${ORS_PORTABLE_GLIBC:-2.17}
TOOLS=${ORS_PORTABLE_TOOLS:-$REPO/target/portable-tools}
TARGET=x86_64-unknown-linux-gnu
CARGO_ZIGBUILD_VERSION=0.24.1
ZIGLANG_VERSION=0.17.1
export CARGO=${CARGO:-cargo}
run_tests=0
case "${1:-}" in
--test) run_tests=1 ;;
"") ;;
*)
    echo "usage: $0 [--test]" >&2
    exit 2
    ;;
esac

step() { printf '\n=== %s\n' "$*"; }

have_zig() { command -v zig >/dev/null 2>&1 || python3 -m ziglang version >/dev/null 2>&1; }

if [[ -x "$TOOLS/venv/bin/cargo-zigbuild" ]]; then
    export PATH="$TOOLS/venv/bin:$PATH"
fi
if ! command -v cargo-zigbuild >/dev/null 2>&1 || ! have_zig; then
    step "installing cargo-zigbuild $CARGO_ZIGBUILD_VERSION and zig (ziglang $ZIGLANG_VERSION) into $TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "ziglang==$ZIGLANG_VERSION"
    export PATH="$TOOLS/venv/bin:$PATH"
fi
if [[ "$(uname -m)" != x86_64 ]]; then
    echo "portable-build.sh: builds for $TARGET on an x86_64 host only (this is $(uname -m))" >&2
    exit 1
fi
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

step "cargo zigbuild --release --features cli --target $TARGET.$GLIBC ($(cargo-zigbuild --version), zig $(zig version 2>/dev/null || python3 -m ziglang version))"
start=$(date +%s)
# --features cli: the operator command too (the library is the same).
"$CARGO" zigbuild --release --features cli --target "$TARGET.$GLIBC"
echo "built in $(($(date +%s) - start)) s"

out=$REPO/target/$TARGET/release
step "checking glibc symbol versions (at most $GLIBC)"
"$HERE/check-glibc.sh" "$out/libors_redis.so" "$GLIBC"
"$HERE/check-glibc.sh" "$out/ors-redis" "$GLIBC"

if ((run_tests)); then
    step "unit tests built the same way (cargo-zigbuild test --release --target $TARGET.$GLIBC --lib)"
    start=$(date +%s)
    cargo-zigbuild test --release --target "$TARGET.$GLIBC" --lib
    echo "built and ran in $(($(date +%s) - start)) s"
fi
echo
echo "portable library: $out/libors_redis.so"
