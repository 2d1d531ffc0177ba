#!/usr/bin/env bash
# bench-reports.sh: the committed benchmark reports are what bench/compare.py
# makes of the committed measurements. For each bench/*.json written by the
# default mode, `compare.py --from-json` redraws the tables and the chart into
# a temporary folder, and they must equal the committed .md and .svg byte for
# byte (so no figure in them was typed by hand, and the script's ratios and
# "met"/"MISSED" lines are the ones shipped). Runs no benchmark and needs no
# server.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_DIR=$(cd "$HERE/../bench" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

status=0
checked=0
# name of the json -> the .md and .svg it was rendered to
for pair in "results.json results.md throughput.svg" \
    "results-mix-1-1-1.json results-mix-1-1-1.md throughput-mix-1-1-1.svg"; do
    read -r json md svg <<<"$pair"
    [ -f "$BENCH_DIR/$json" ] || continue
    out="$TMP/${json%.json}"
    python3 "$BENCH_DIR/compare.py" --from-json "$BENCH_DIR/$json" --out-dir "$out" >/dev/null 2>"$TMP/err" || {
        echo "FAIL  compare.py --from-json $json: $(cat "$TMP/err")"
        status=1
        continue
    }
    for pair2 in "results.md $md" "throughput.svg $svg"; do
        read -r made committed <<<"$pair2"
        [ -f "$BENCH_DIR/$committed" ] || continue
        checked=$((checked + 1))
        if cmp -s "$out/$made" "$BENCH_DIR/$committed"; then
            echo "ok    bench/$committed is compare.py's rendering of bench/$json"
        else
            echo "FAIL  bench/$committed differs from compare.py's rendering of bench/$json:"
            diff -u "$BENCH_DIR/$committed" "$out/$made" | head -40 || true
            status=1
        fi
    done
done
if [ "$checked" = 0 ]; then
    echo "FAIL  no committed report found in $BENCH_DIR"
    status=1
fi
echo "bench-reports: $checked report(s) checked"
exit "$status"
