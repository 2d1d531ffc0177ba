#!/usr/bin/env bash
# The operator command's crates stay out of the library, and the library
# does not change with the command's `cli` feature:
#   - `cargo tree -e normal` without features lists none of the command's
#     crates (clap, clap_complete, serde, serde_json, indicatif, base64);
#   - libors_redis.so built without and then with --features cli exports
#     exactly the header's functions both times (c_tests/check-library.sh),
#     needs the same shared libraries, and what is loaded (the sections
#     with the A flag: .text, .rodata, .data, ...) is the same size to
#     within 0.1%. Not byte for byte: cargo's crate hash includes the
#     features, the compiler partitions code into codegen units by hashes,
#     and so a build with another feature set may place a relocation or a
#     GOT entry differently (seen: 1 relocation and 1 GOT entry in 1.9 MB).
#     The files also differ in what is not loaded: debug info and symbol
#     names, which carry that hash.
#
#   c_tests/check-cli-feature.sh      (two release builds of the library)
#
# Ends with the library built --features cli, as run-tests.sh builds it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"
CARGO=${CARGO:-cargo}
work=$(mktemp -d "${TMPDIR:-/tmp}/ors-cli-feature.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0

cli_crates='^(clap|clap_builder|clap_derive|clap_lex|clap_complete|serde|serde_core|serde_derive|serde_json|indicatif|console|base64) '
"$CARGO" tree -e normal --no-default-features --prefix none --format '{p}' >"$work/tree"
if grep -E "$cli_crates" "$work/tree" >"$work/found"; then
    echo "FAIL - the library without features depends on:" $(cut -d' ' -f1 "$work/found" | sort -u)
    fail=1
else
    echo "ok - cargo tree -e normal without features: none of the command's crates ($(sort -u "$work/tree" | wc -l) packages)"
fi
"$CARGO" tree -e normal --features cli --prefix none --format '{p}' >"$work/tree-cli"
grep -qE '^clap ' "$work/tree-cli" || { echo "FAIL - --features cli does not bring clap in"; fail=1; }

# name size, for every section with the A (alloc) flag: what is loaded.
loaded_sections() {
    readelf -SW "$1" | awk '$1 ~ /^\[/ { sub(/^ *\[ *[0-9]+\] */, ""); if ($7 ~ /A/) print $1, $5 }'
}
for features in none cli; do
    args=(build --release --lib)
    [[ $features == cli ]] && args+=(--features cli)
    "$CARGO" "${args[@]}" 2>&1 | tail -n 1
    cp target/release/libors_redis.so "$work/lib-$features.so"
    loaded_sections "$work/lib-$features.so" >"$work/sections-$features"
    if ! "$HERE/check-library.sh" "$work/lib-$features.so" include/ors_redis.h >"$work/check-$features" 2>&1; then
        sed 's/^/    /' "$work/check-$features"
        echo "FAIL - exports of the library built with features: $features"
        fail=1
    fi
done
needed() { readelf -dW "$1" | awk '/\(NEEDED\)/ {print $NF}' | sort; }
if [[ "$(needed "$work/lib-none.so")" == "$(needed "$work/lib-cli.so")" ]]; then
    echo "ok - the same shared libraries needed with or without --features cli:" $(needed "$work/lib-none.so")
else
    echo "FAIL - shared libraries needed differ with --features cli"
    fail=1
fi
# Sizes are hexadecimal in readelf's table.
loaded_bytes() {
    local name size sum=0
    while read -r name size; do sum=$((sum + 16#$size)); done <"$1"
    echo "$sum"
}
text_bytes() { echo $((16#$(awk '$1 == ".text" { print $2 }' "$1"))); }
none=$(loaded_bytes "$work/sections-none") cli=$(loaded_bytes "$work/sections-cli")
text_none=$(text_bytes "$work/sections-none") text_cli=$(text_bytes "$work/sections-cli")
within() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d * 1000 <= a) }'; }
if within "$none" "$cli" && within "$text_none" "$text_cli"; then
    echo "ok - loaded size $none B without and $cli B with --features cli (.text $text_none and $text_cli B), within 0.1%"
else
    echo "FAIL - loaded size $none B without and $cli B with --features cli (.text $text_none and $text_cli B): more than 0.1% apart"
    fail=1
fi
if ! diff -u "$work/sections-none" "$work/sections-cli" >"$work/diff"; then
    echo "   sections that differ (codegen-unit placement, see the top of this script):"
    grep '^[-+]\.' "$work/diff" | sed 's/^/    /'
fi
echo "   (file sizes $(stat -c %s "$work/lib-none.so") and $(stat -c %s "$work/lib-cli.so") B: debug info and symbol names too)"
if ((fail)); then
    exit 1
fi
echo "4 passed, 0 failed"
