#!/usr/bin/env bash
# Checks that a shared library (or program) loads on hosts with an old glibc:
# no dynamic symbol it needs may carry a GLIBC_ version above MAX (objdump -T),
# nor may its version needs name one (readelf -V: they can also name versions
# no symbol carries, such as GLIBC_ABI_DT_RELR for packed relocations, glibc
# 2.36+). MAX defaults to 2.17, the glibc of RHEL/CentOS 7, the oldest
# enterprise hosts ORS runs on.
#
#   cmake/check-glibc.sh path/to/libors_redis.so [MAX]
set -euo pipefail

lib=${1:?usage: check-glibc.sh LIBRARY [MAX]}
max=${2:-2.17}

above_max() { # above_max VERSION: not a plain number, or a higher one than MAX
    [[ ! "$1" =~ ^[0-9]+(\.[0-9]+)*$ ]] || [[ "$(printf '%s\n%s\n' "$1" "$max" | sort -V | tail -n 1)" != "$max" ]]
}
failed() {
    echo "FAIL - $*"
    echo "0 passed, 1 failed"
    exit 1
}

# objdump -T lists every dynamic symbol with its version, e.g.
#   0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.17) clock_gettime
symbols=$(objdump -T "$lib" | sed -n 's/.*(GLIBC_\([^)]*\)) *\(.*\)$/\1 \2/p' | sort -u)
[[ -n "$symbols" ]] || failed "objdump -T found no GLIBC_ symbol versions in $lib"
highest=$(cut -d ' ' -f 1 <<<"$symbols" | sort -uV | tail -n 1)
too_new=$(while read -r version symbol; do
    if above_max "$version"; then echo "$symbol@GLIBC_$version"; fi
done <<<"$symbols")
[[ -z "$too_new" ]] || failed "$lib needs GLIBC_$highest, above GLIBC_$max: $(sort -u <<<"$too_new" | paste -sd ' ')"

needs=$(readelf -V "$lib" | sed -n '/\.gnu\.version_r/,$p' | sed -n 's/.*Name: GLIBC_\([^ ]*\).*/\1/p' | sort -uV)
bad_needs=$(while read -r version; do
    if above_max "$version"; then echo "GLIBC_$version"; fi
done <<<"$needs")
[[ -z "$bad_needs" ]] || failed "$lib's version needs (readelf -V) name $(paste -sd ' ' <<<"$bad_needs")"

echo "ok - the highest glibc symbol version $lib needs is GLIBC_$highest (at most GLIBC_$max; version needs: $(paste -sd ' ' <<<"$needs"))"
echo "1 passed, 0 failed"
