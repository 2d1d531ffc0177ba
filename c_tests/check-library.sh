#!/usr/bin/env bash
# Checks the shared library as a linker sees it: its SONAME is versioned, its
# dynamic symbol table exports exactly the functions that the header
# declares, nothing else, and it does not link OpenSSL (TLS is rustls, so it
# cannot clash with the OpenSSL of the host process).
#
#   c_tests/check-library.sh <path/to/libors_redis.so> <path/to/ors_redis.h>
set -euo pipefail

lib=$1
header=$2
fail=0

soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if [[ "$soname" =~ ^libors_redis\.so\.[0-9]+$ ]]; then
    echo "ok - SONAME is $soname"
else
    echo "FAIL - SONAME is '$soname', expected libors_redis.so.<major>"
    fail=1
fi

exported=$(nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u)
declared=$(grep -oE '\bors_[a-z_]+\(' "$header" | tr -d '(' | sort -u)
if [[ "$exported" == "$declared" ]]; then
    echo "ok - exports exactly the $(wc -l <<<"$declared") functions the header declares:" $exported
else
    echo "FAIL - exported symbols differ from the header's functions:"
    diff <(echo "$declared") <(echo "$exported") | sed 's/^/    /' || true
    fail=1
fi

needed=$(readelf -d "$lib" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')
if grep -qE 'libssl|libcrypto' <<<"$needed"; then
    echo "FAIL - links OpenSSL: $needed"
    fail=1
else
    echo "ok - needs only: $needed(no libssl, no libcrypto)"
fi

if ((fail)); then
    echo "0 passed, 1 failed"
    exit 1
fi
echo "3 passed, 0 failed"
