#!/usr/bin/env bash
# Installs what the C tests need when it is missing: redis-server, redis-cli
# and cmake (plus a C/C++ compiler, and openssl for the TLS test certificates). Uses apt-get when running as root on a
# Debian/Ubuntu machine; otherwise says what to install and fails.
#
#   c_tests/ensure-deps.sh            (run-tests.sh and run-demo.sh call it)
set -euo pipefail

PROG=ensure-deps.sh
# command -> Debian package
declare -A PKG=([redis-server]=redis-server [redis-cli]=redis-tools [cmake]=cmake [cc]=gcc [c++]=g++ [openssl]=openssl)

missing=()
for cmd in redis-server redis-cli cmake cc c++ openssl; do
    # REDIS_SERVER / REDIS_CLI may point elsewhere; then that binary must exist.
    bin=$cmd
    [[ "$cmd" == redis-server && -n "${REDIS_SERVER:-}" ]] && bin=$REDIS_SERVER
    [[ "$cmd" == redis-cli && -n "${REDIS_CLI:-}" ]] && bin=$REDIS_CLI
    command -v "$bin" >/dev/null 2>&1 || missing+=("${PKG[$cmd]}")
done
((${#missing[@]} == 0)) && exit 0

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "$PROG: installing ${missing[*]} with apt-get"
    log=$(mktemp)
    # A redis-server package may start a service on port 6379: harmless, the tests use their own ports.
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        </dev/null >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "$PROG: error: apt-get install ${missing[*]} failed" >&2
        exit 1
    fi
    rm -f "$log"
    exit 0
fi
echo "$PROG: error: missing ${missing[*]}; install them (e.g. apt-get install -y ${missing[*]})" >&2
exit 1
