#!/usr/bin/env bash
# The node-health benchmark: c_tests/netfault/nf_health.c with 8-second
# faults (NF_HEALTH_BENCH=1), in a private network namespace with a 3+3
# cluster whose cluster-node-timeout is Redis's default (15 s), 16 threads
# doing put+get of 1 KiB sessions over all slots. It prints, per second, the
# calls that succeeded on the healthy masters and on the sick master's slots
# and the fast failures, before, during and after each fault (a hang,
# SIGSTOP; a blackholed client port; 64 threads; a failover while marked),
# and writes them to bench/node-health-results.md.
#
#   bench/node-health.sh
#
# Needs root (namespaces, iptables) and the test programs built
# (c_tests/run-tests.sh -R netfault_node_health builds and runs the short
# version). Environment: ORS_TESTS_BUILD_DIR (default target/c_tests-build),
# ORS_BENCH_OUT (default bench/node-health-results.md).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=${ORS_TESTS_BUILD_DIR:-$REPO/target/c_tests-build}
OUT=${ORS_BENCH_OUT:-$HERE/node-health-results.md}
PROGRAM=$BUILD/nf_health
[[ -x "$PROGRAM" ]] || {
    echo "node-health.sh: $PROGRAM not found: build it with c_tests/run-tests.sh -R netfault_node_health" >&2
    exit 2
}
LOGS=$(mktemp -d /tmp/ors-node-health.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

# redis-socket-timeout 1000 (the default) and 100: a hung master is marked
# after one of them, and until then the threads that met it wait.
for timeout_ms in 1000 100; do
    NF_HEALTH_BENCH=1 NF_HEALTH_SOCKET_TIMEOUT=$timeout_ms ORS_CLUSTER_NODE_TIMEOUT=15000 \
        ORS_NETFAULT_DIR=$REPO/target/netfault/node-health-bench \
        timeout 600 "$REPO/c_tests/netfault/netns.sh" "$PROGRAM" | tee "$LOGS/$timeout_ms.log"
done

{
    echo "# Node health: calls per second around one sick master"
    echo
    echo "Written by \`bench/node-health.sh\` on $(date -u +%Y-%m-%d) ($(nproc) cores; $(redis-server --version | cut -d' ' -f3))."
    echo "16 threads, put+get of 1 KiB sessions over all slots, op-timeout 2000 ms,"
    echo "node-fail-fast=true, cluster-node-timeout 15 s; redis-socket-timeout 1000 ms"
    echo "(the default), then 100 ms."
    echo "healthy_ok: calls that succeeded on the two healthy masters in that second;"
    echo "sick_ok / sick_fast: calls of the sick master's slots that succeeded / returned"
    echo "ORS_ERR_UNAVAILABLE at once. \"(fault)\" marks the seconds of the fault."
    echo
    for timeout_ms in 1000 100; do
        log=$LOGS/$timeout_ms.log
        echo "## redis-socket-timeout $timeout_ms ms"
        echo
        grep '^# FIGURE' "$log" | sed 's/^# FIGURE /- /'
        echo
        echo '```text'
        grep '^# SECOND' "$log" | sed 's/^# SECOND //'
        echo '```'
        echo
        echo "Checks: $(grep -E 'passed, .* failed' "$log" | tail -n 1)"
        grep -E '^FAIL - ' "$log" | sed 's/^/- /' || true
        echo
    done
} >"$OUT"
echo "node-health.sh: wrote $OUT"
