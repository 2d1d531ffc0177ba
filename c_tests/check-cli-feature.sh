#!/usr/bin/env bash
# The operator command's crates stay out of the library, and the library
# does not change with the command's `cli` feature:
#   - `cargo tree -e normal` without features lists none of the command's
#     crates (clap, clap_complete, serde, serde_json, indicatif, base64);
#   - libors_redis.so built without and then with --features cli exports
#     exactly the header's functions both times (c_tests/check-library.sh),
#     and every section that is loaded (.text, .rodata, .data, ...) has the
#     same size in both. The files themselves differ only in what is not
#     loaded: debug info and symbol-table names, which carry the crate's
#     hash, and cargo's hash includes the features.
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
if diff -u "$work/sections-none" "$work/sections-cli" >"$work/diff"; then
    text=$(awk '$1==".text" {print $2}' "$work/sections-none")
    echo "ok - the same exports (the header's $(nm -D --defined-only "$work/lib-none.so" | grep -c .) functions)" \
        "and loaded sections ($(wc -l <"$work/sections-none"), .text $((16#${text:-0})) B) with or without --features cli"
    echo "   (file sizes $(stat -c %s "$work/lib-none.so") and $(stat -c %s "$work/lib-cli.so") B: debug info and symbol names only)"
else
    echo "FAIL - loaded sections differ with --features cli:"
    sed 's/^/    /' "$work/diff"
    fail=1
fi
if ((fail)); then
    exit 1
fi
echo "3 passed, 0 failed"
