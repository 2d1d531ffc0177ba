#!/usr/bin/env bash
# Where the servers' CPU goes under ors-redis and under redis-benchmark:
# perf (cpu-clock, call graphs) on the six redis-server processes of a local
# cluster while each workload runs at T threads / clients, 1 KiB values:
#   ours   ors_bench --threads T --mix 1:2:1
#   SET    redis-benchmark --cluster -P 1 -c T -t set
#   GET    redis-benchmark --cluster -P 1 -c T -t get (keys prepopulated)
# For each it prints the commands the masters ran in the window, the samples,
# and the share of samples spent waking a reader up (sock_def_readable: the
# server's write of a reply waking the client that sleeps in recv), then the
# top symbols.
#
#   bench/server-profile.sh [T]        (default 16; ~1 min)
#
# Environment: ORS_BENCH_LIB_DIR (default target/release, built if missing),
# ORS_BENCH_PORT (first cluster port, default 7110). Needs perf (Debian's
# linux-perf), redis-server, redis-tools, cc. Starts and stops its cluster.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
T=${1:-16}
PORT=${ORS_BENCH_PORT:-7110}
LIB_DIR=${ORS_BENCH_LIB_DIR:-$REPO/target/release}
[[ "$T" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [T>0]" >&2; exit 2; }
for tool in perf redis-benchmark redis-cli cc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "server-profile.sh: $tool not found" >&2; exit 1; }
done
[[ -f "$LIB_DIR/libors_redis.so" ]] || (cd "$REPO" && cargo build --release --quiet)

WORK=$(mktemp -d /tmp/ors-server-profile.XXXXXX)
export ORS_CLUSTER_PORT=$PORT ORS_CLUSTER_DIR=$WORK/cluster
cleanup() {
    "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cc -O2 -std=gnu99 -I"$REPO/include" "$REPO/c_tests/bench.c" -o "$WORK/ors_bench" \
    -L"$LIB_DIR" -lors_redis -lpthread -Wl,-rpath,"$LIB_DIR"
"$REPO/c_tests/cluster.sh" start >/dev/null
ports=$(seq "$PORT" $((PORT + 5)))
pids=$(for p in $ports; do redis-cli -p "$p" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p'; done | paste -sd,)
masters=$(for p in $ports; do
    if redis-cli -p "$p" role | head -n 1 | grep -q master; then echo "$p"; fi
done)

master_commands() {
    local total=0 p n
    for p in $masters; do
        n=$(redis-cli -p "$p" info stats | sed -n 's/^total_commands_processed:\([0-9]*\).*/\1/p')
        total=$((total + n))
    done
    echo "$total"
}

# profile NAME COMMAND...: runs the command for 6 s and profiles 4 s of it.
profile() {
    local name=$1 before after data=$WORK/$1.data
    shift
    timeout 6 "$@" >/dev/null 2>&1 &
    local load=$!
    sleep 0.8
    before=$(master_commands)
    perf record -q -g -e cpu-clock -F 1000 -p "$pids" -o "$data" -- sleep 4 >/dev/null 2>&1
    after=$(master_commands)
    wait "$load" || true
    # One sample per blank-line separated block of `perf script`; a sample
    # "wakes a reader" when sock_def_readable is on its stack.
    local counts
    counts=$(perf script -i "$data" 2>/dev/null | awk '
        /^$/ { if (inside) { n++; if (wake) w++ } inside = 0; wake = 0; next }
        { inside = 1 }
        /sock_def_readable/ { wake = 1 }
        END { if (inside) { n++; if (wake) w++ } printf "%d %d", n, w }')
    local samples=${counts% *} wake=${counts#* }
    printf '\n=== %s: %s commands on the masters in 4 s; %s samples (1 ms of server CPU each), %.2f ms per 1000 commands; waking a client that sleeps in recv (sock_def_readable on the stack): %s samples, %.1f%%\n' \
        "$name" "$((after - before))" "$samples" "$(echo "$samples * 1000 / ($after - $before)" | bc -l)" \
        "$wake" "$(echo "100 * $wake / $samples" | bc -l)"
    perf report -i "$data" --stdio --no-children --sort sym -g none 2>/dev/null | grep -E '^ +[0-9]' | head -n 8 || true
}

profile "ors-redis T=$T" "$WORK/ors_bench" --config "redis-nodes=127.0.0.1:$PORT cluster-name=bench" \
    --threads "$T" --value-size 1024 --duration 6 --warmup 0.2 --mix 1:2:1
redis-benchmark --cluster -p "$PORT" -P 1 -c "$T" -d 1024 -t set -r 1000 -n 200000 -q >/dev/null 2>&1
profile "redis-benchmark SET -c $T" redis-benchmark --cluster -p "$PORT" -P 1 -c "$T" -d 1024 -t set -r 1000 -n 5000000
profile "redis-benchmark GET -c $T" redis-benchmark --cluster -p "$PORT" -P 1 -c "$T" -d 1024 -t get -r 1000 -n 5000000
