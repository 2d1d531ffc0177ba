#!/usr/bin/env bash
# Checks the shared library as a linker sees it: its SONAME is versioned and
# its dynamic symbol table exports exactly the functions that the header
# declares, nothing else.
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

if ((fail)); then
    echo "0 passed, 1 failed"
    exit 1
fi
echo "2 passed, 0 failed"
