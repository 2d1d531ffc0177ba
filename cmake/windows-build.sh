#!/usr/bin/env bash
# Builds ors_redis.dll for x86_64 Windows on a Linux host, with mingw-w64
# (Rust target x86_64-pc-windows-gnu), and checks what ships:
#
#   cmake/windows-build.sh [--test]
#     -> target/windows/bin/ors_redis.dll        the library (version resource inside)
#        target/windows/lib/libors_redis.dll.a   import library for mingw (gcc, ld)
#        target/windows/lib/ors_redis.lib        COFF import library for MSVC's link.exe
#        target/windows/lib/ors_redis.def        the exports, exactly the header's functions
#        target/windows/include/ors_redis.h, ors_redis.hpp
#
# Checks: the .def lists exactly the functions declared in include/ors_redis.h
# and the DLL exports exactly those (objdump -p); the DLL imports only Windows
# system DLLs (no libgcc_s, libwinpthread, libstdc++: the Rust target links
# them statically); it carries a VERSIONINFO with Cargo.toml's version; an
# MSVC-style linker (lld-link, shipped with Rust as rust-lld) links a program
# against ors_redis.lib and that program runs under wine when wine is there.
#
# --test then runs the Windows tests under wine: the library's unit tests,
# the C contract against local Linux Redis servers and the CMake package
# (c_tests/windows/run-wine-tests.sh; ports from ORS_WIN_PORT, default 7300).
# Install it for a Windows consumer with
#   cmake -S cmake -B target/cmake-windows -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake \
#         -DORS_REDIS_LIBRARY=target/windows/bin/ors_redis.dll
#   cmake --install target/cmake-windows --prefix <prefix>
#
# Needs: rustup (target x86_64-pc-windows-gnu, added if missing), Debian's
# gcc-mingw-w64-x86-64 (gcc, windres, dlltool, objdump); llvm-dlltool is used
# for ors_redis.lib when present (the short import format lib.exe writes).
# Environment: CARGO.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"

TARGET=x86_64-pc-windows-gnu
MINGW=x86_64-w64-mingw32
export CARGO=${CARGO:-cargo}
[[ $# -eq 0 || ($# -eq 1 && $1 == --test) ]] || {
    echo "usage: $0 [--test]" >&2
    exit 2
}

step() { printf '\n=== %s\n' "$*"; }
die() {
    echo "windows-build.sh: $*" >&2
    exit 1
}

for tool in $MINGW-gcc $MINGW-windres $MINGW-dlltool $MINGW-objdump; do
    command -v "$tool" >/dev/null || die "$tool not found: apt-get install gcc-mingw-w64-x86-64"
done
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET"
fi

step "cargo build --release --lib --target $TARGET"
start=$(date +%s)
"$CARGO" build --release --lib --target "$TARGET"
echo "built in $(($(date +%s) - start)) s"

built=$REPO/target/$TARGET/release
out=$REPO/target/windows
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/include"
cp "$built/ors_redis.dll" "$out/bin/"
cp "$built/libors_redis.dll.a" "$out/lib/"
cp include/ors_redis.h include/ors_redis.hpp "$out/include/"
dll=$out/bin/ors_redis.dll
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
$MINGW-objdump -p "$dll" >"$dump"

step "exports: exactly the functions of include/ors_redis.h"
# A function declaration in the generated header starts a line with its
# return type and names an ors_ function (typedefs and macros do not).
header_fns=$(sed -n -E 's/^[a-z][a-z0-9_ ]*[ *](ors_[a-z0-9_]+)\(.*/\1/p' include/ors_redis.h | sort)
[[ -n "$header_fns" ]] || die "no function found in include/ors_redis.h"
# objdump -p: the name table rows look like "\t[   0] ors_free".
dll_exports=$(sed -n -E 's/^\s*\[ *[0-9]+\] ([A-Za-z_][A-Za-z0-9_@]*)$/\1/p' "$dump" | sort)
if [[ "$dll_exports" != "$header_fns" ]]; then
    diff <(echo "$header_fns") <(echo "$dll_exports") | sed 's/^/  /' >&2 || true
    die "the DLL's exports (>) differ from the header's functions (<)"
fi
{
    echo "LIBRARY ors_redis.dll"
    echo "EXPORTS"
    echo "$header_fns" | sed 's/^/    /'
} >"$out/lib/ors_redis.def"
echo "$(echo "$header_fns" | wc -l) exports, all ors_*, the same as the header's functions"

step "imports: Windows system DLLs only"
# Everything here ships with Windows (api-ms-win-* are API sets of the system
# loader); bcryptprimitives.dll is Windows 10's, which Rust's std needs.
system='^(kernel32|advapi32|ntdll|msvcrt|ucrtbase|ws2_32|bcrypt|bcryptprimitives|crypt32|ncrypt|secur32|userenv|user32|ole32|oleaut32|shell32|api-ms-win-[a-z0-9-]+)\.dll$'
bad=0
while read -r name; do
    if [[ "${name,,}" =~ $system ]]; then
        echo "  $name"
    else
        echo "  $name  <- not a Windows system DLL" >&2
        bad=1
    fi
done < <(sed -n 's/^\s*DLL Name: //p' "$dump" | sort -fu)
((bad == 0)) || die "ors_redis.dll needs a DLL that Windows does not have"

step "version resource"
version=$(sed -n 's/^version *= *"\([0-9.]*\)".*/\1/p' Cargo.toml | head -n 1)
strings -el "$dll" >"$dump"
for field in FileVersion ProductVersion; do
    grep -A1 -x "$field" "$dump" | tail -n 1 | grep -qx "$version" ||
        die "the DLL has no VERSIONINFO $field $version"
done
grep -qx "ors_redis.dll" "$dump" || die "the VERSIONINFO has no OriginalFilename ors_redis.dll"
echo "VERSIONINFO FileVersion and ProductVersion $version"

step "ors_redis.lib for MSVC"
if command -v llvm-dlltool >/dev/null 2>&1; then
    llvm-dlltool -m i386:x86-64 -d "$out/lib/ors_redis.def" -l "$out/lib/ors_redis.lib"
    echo "made with llvm-dlltool (short import format, as lib.exe writes it)"
else
    $MINGW-dlltool --machine i386:x86-64 -d "$out/lib/ors_redis.def" -D ors_redis.dll -l "$out/lib/ors_redis.lib"
    echo "made with $MINGW-dlltool"
fi
# Proof that an MSVC-style linker reads it: lld-link (link.exe's command line)
# links a program without any C runtime, through ors_redis.lib alone.
lld=$(find "$(rustc --print sysroot)/lib/rustlib" -name rust-lld -type f 2>/dev/null | head -n 1 || true)
if [[ -n "$lld" ]]; then
    probe=$REPO/target/windows-probe
    mkdir -p "$probe"
    $MINGW-gcc -O1 -Wall -Wextra -Werror -ffreestanding -fno-asynchronous-unwind-tables -fno-stack-protector \
        -I include -c c_tests/windows/msvc_link_probe.c -o "$probe/msvc_link_probe.o"
    "$lld" -flavor link /nologo /nodefaultlib /entry:probe_main /subsystem:console \
        /out:"$probe/msvc_link_probe.exe" "$probe/msvc_link_probe.o" "$out/lib/ors_redis.lib" \
        "$(dirname "$($MINGW-gcc -print-file-name=libkernel32.a)")/libkernel32.a"
    echo "lld-link linked msvc_link_probe.exe against ors_redis.lib"
else
    echo "rust-lld not found: the MSVC link probe is skipped"
fi

if [[ ${1:-} == --test ]]; then
    "$REPO/c_tests/windows/run-wine-tests.sh"
fi
echo
echo "Windows build: $out (bin/ors_redis.dll, lib/ors_redis.lib, lib/libors_redis.dll.a, include/)"
