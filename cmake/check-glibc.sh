#!/usr/bin/env bash
# Checks that a shared library loads on hosts with an old glibc: no dynamic
# symbol it needs may carry a GLIBC_ version above MAX (default 2.17, the
# glibc of RHEL/CentOS 7, the oldest enterprise hosts ORS runs on).
#
#   cmake/check-glibc.sh path/to/libors_redis.so [MAX]
set -euo pipefail

lib=${1:?usage: check-glibc.sh LIBRARY [MAX]}
max=${2:-2.17}

# objdump -T lists every dynamic symbol with its version, e.g.
#   0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.17) clock_gettime
versions=$(objdump -T "$lib" | grep -oE '\(GLIBC_[0-9]+(\.[0-9]+)*\)' | tr -d '()' | sed 's/^GLIBC_//' | sort -uV)
if [[ -z "$versions" ]]; then
    echo "FAIL - objdump -T found no GLIBC_ symbol versions in $lib"
    echo "0 passed, 1 failed"
    exit 1
fi
highest=$(tail -n 1 <<<"$versions")
if [[ "$(printf '%s\n%s\n' "$highest" "$max" | sort -V | tail -n 1)" == "$max" ]]; then
    echo "ok - highest glibc symbol version $lib needs is GLIBC_$highest (at most GLIBC_$max)"
    echo "1 passed, 0 failed"
    exit 0
fi
echo "FAIL - $lib needs GLIBC_$highest, above GLIBC_$max; these symbols:"
objdump -T "$lib" | grep -E '\(GLIBC_[0-9.]+\)' | awk -v max="$max" '{
    v = $0; sub(/.*\(GLIBC_/, "", v); sub(/\).*/, "", v)
    split(v, a, "."); split(max, b, ".")
    if (a[1] + 0 > b[1] + 0 || (a[1] + 0 == b[1] + 0 && a[2] + 0 > b[2] + 0)) print "    " $NF " (GLIBC_" v ")"
}' | sort -u
echo "0 passed, 1 failed"
exit 1
