#!/usr/bin/env bash
# bench-smoke.sh ORS_BENCH: checks that the benchmark (c_tests/bench.c) does
# and counts what it says, against the test cluster (ctest label core):
#
#   - --ops mode makes exactly T x N sessions of the --mix asked for, among
#     them the two like-for-like mixes bench/compare.py uses (1:0:1, 1:50:1),
#     with 0 errors and every value read back checked;
#   - a timed run reports a rate, ordered percentiles and the mix's ratio of
#     calls;
#   - no session key outlives a run (every cycle ends with its delete);
#   - compressed values: a corpus session under zstd and lz4 reads back as
#     put, and bench/compression.py --smoke passes;
#   - a failure is reported, not hidden: a standalone server is refused and
#     the run exits 1; bad options exit 2.
#
# Environment (from ctest): ORS_TEST_PORT, ORS_STANDALONE_PORT, REDIS_CLI.
set -euo pipefail

BENCH=${1:?usage: bench-smoke.sh ORS_BENCH}
PORT=${ORS_TEST_PORT:-7000}
STANDALONE=${ORS_STANDALONE_PORT:-7010}
CLI=${REDIS_CLI:-redis-cli}
CLUSTER_NAME="bench-smoke-$$"
CONFIG="redis-nodes=127.0.0.1:$PORT cluster-name=$CLUSTER_NAME"

checks=0
failures=0
check() { # check WHAT COND...
    local what=$1
    shift
    checks=$((checks + 1))
    if "$@"; then
        echo "ok    $what"
    else
        echo "FAIL  $what"
        failures=$((failures + 1))
    fi
}

# field NAME RESULT-LINE: the value of NAME=... in a RESULT line.
field() {
    local name=$1 line=$2 kv
    for kv in $line; do
        if [[ $kv == "$name="* ]]; then
            echo "${kv#*=}"
            return 0
        fi
    done
    echo "missing-$name"
}

run_result() { # run_result ARGS...: the RESULT line of a run that exits 0
    local out
    out=$("$BENCH" --config "$CONFIG" --quiet "$@") || {
        echo "ors_bench $* exited $?" >&2
        return 1
    }
    grep '^RESULT ' <<<"$out"
}

# Fixed counts: every call of every counted session, none more.
expect_left=0 # sessions of runs without deletes (warm-up ones included)
for spec in "3 20 1:2:1" "2 10 1:0:1" "1 2 1:50:1" "2 5 3:1:0"; do
    read -r threads ops mix <<<"$spec"
    IFS=: read -r p g d <<<"$mix"
    line=$(run_result --threads "$threads" --ops "$ops" --warmup-ops 2 --mix "$mix" --ttl 60)
    sessions=$((threads * ops))
    if [ "$d" = 0 ]; then
        expect_left=$((expect_left + threads * (ops + 2)))
    fi
    check "--ops $ops --threads $threads --mix $mix: 0 errors" \
        test "$(field errors "$line")" = 0
    check "--mix $mix: $((sessions * p)) puts" test "$(field put_calls "$line")" = $((sessions * p))
    check "--mix $mix: $((sessions * g)) gets" test "$(field get_calls "$line")" = $((sessions * g))
    check "--mix $mix: $((sessions * d)) deletes" test "$(field del_calls "$line")" = $((sessions * d))
    check "--mix $mix: calls = $((sessions * (p + g + d)))" \
        test "$(field calls "$line")" = $((sessions * (p + g + d)))
done

# A timed run: a rate, percentiles in order, the mix's proportions.
line=$(run_result --threads 2 --duration 0.5 --warmup 0.2 --mix 1:2:1)
puts=$(field put_calls "$line")
check "timed run: 0 errors" test "$(field errors "$line")" = 0
check "timed run: some sessions ($puts)" test "$puts" -gt 0
check "timed run: two gets per put" test "$(field get_calls "$line")" = $((2 * puts))
check "timed run: one delete per put" test "$(field del_calls "$line")" = "$puts"
check "timed run: a rate above 0" awk -v r="$(field ops_per_sec "$line")" 'BEGIN { exit !(r > 0) }'
check "timed run: p50 <= p99 <= p99.9 <= max" awk \
    -v a="$(field all_p50_us "$line")" -v b="$(field all_p99_us "$line")" \
    -v c="$(field all_p999_us "$line")" -v d="$(field all_max_us "$line")" \
    'BEGIN { exit !(a > 0 && a <= b && b <= c && c <= d) }'
check "timed run: client CPU per call above 0" awk -v c="$(field cpu_us_per_op "$line")" 'BEGIN { exit !(c > 0) }'

# The 3:1:0 run left its sessions (no delete, TTL 60 s); the others none.
# Count what is left on every master and remove it, with EXPIRE 0 rather
# than DEL: c_tests/matrix/run.sh reads the masters' DEL and UNLINK counts
# afterwards as the library's own.
left=0
for addr in $("$CLI" -p "$PORT" cluster nodes | awk '$3 ~ /master/ { split($2, a, "@"); print a[1] }'); do
    node_port=${addr##*:}
    keys=$("$CLI" -p "$node_port" --scan --pattern "ORS:$CLUSTER_NAME:*" | wc -l)
    left=$((left + keys))
    "$CLI" -p "$node_port" --scan --pattern "ORS:$CLUSTER_NAME:*" |
        while read -r key; do "$CLI" -p "$node_port" expire "$key" 0 >/dev/null; done
done
check "keys left: only the $expect_left sessions of the run without deletes (found $left)" \
    test "$left" = "$expect_left"

# Compressed values (docs/compression.md; the figures are
# bench/compression.py's): a corpus session (bench/corpus.py) under zstd and
# lz4, every get checked against what was put; then that script's own short
# run on this cluster (every setting reads back what it wrote and stores the
# corpus in less memory than off).
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
corpus_dir=$(mktemp -d)
trap 'rm -rf "$corpus_dir"' EXIT
python3 "$REPO/bench/corpus.py" --count 21 --out "$corpus_dir" >/dev/null 2>&1
session=$(ls -S "$corpus_dir"/session-*.json | sed -n 11p)
for setting in zstd lz4; do
    line=$("$BENCH" --config "$CONFIG compression=$setting" --quiet --threads 2 --ops 20 --warmup-ops 2 \
        --value-file "$session" | grep '^RESULT ') || line="failed"
    check "compression=$setting, a $(wc -c <"$session")-byte corpus session: 0 errors, every get checked" \
        test "$(field errors "$line")" = 0
    check "compression=$setting: 60 calls per thread counted" test "$(field calls "$line")" = 120
done
check "bench/compression.py --smoke" python3 "$REPO/bench/compression.py" --smoke --reuse --port "$PORT"

# Failures are reported.
set +e
out=$("$BENCH" --config "redis-nodes=127.0.0.1:$STANDALONE cluster-name=$CLUSTER_NAME" --threads 1 --ops 1 2>&1)
rc=$?
set -e
check "a standalone server: exit 1 (got $rc)" test "$rc" = 1
check "a standalone server: the reason is printed" grep -q "ors_redis_init: ORS_ERR_" <<<"$out"
for bad in "--mix 0:1:1" "--mix 1:1:2" "--threads 0" "--value-size x" "--no-such-option"; do
    set +e
    # shellcheck disable=SC2086 # the options are split on purpose
    "$BENCH" --config "$CONFIG" $bad >/dev/null 2>&1
    rc=$?
    set -e
    check "bad usage '$bad': exit 2 (got $rc)" test "$rc" = 2
done

# The harness's summary line (c_tests/harness.h), which the matrix counts.
echo "$((checks - failures)) passed, $failures failed"
test "$failures" = 0
