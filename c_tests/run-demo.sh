#!/usr/bin/env bash
# Builds the library and the demo, starts a throwaway Redis Cluster on its own
# ports, runs the multi-threaded demo against it and stops the cluster.
#
#   c_tests/run-demo.sh [threads [sessions-per-thread]]
#
# Environment: ORS_DEMO_PORT (first cluster port, default 7020), CARGO,
# REDIS_SERVER, REDIS_CLI.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"

CARGO=${CARGO:-cargo}
export ORS_CLUSTER_PORT=${ORS_DEMO_PORT:-7020}
export ORS_CLUSTER_DIR="$REPO/target/demo-cluster"
BUILD_DIR=${ORS_TESTS_BUILD_DIR:-$REPO/target/c_tests-build}

cleanup() {
    local rc=$?
    "$HERE/cluster.sh" stop || echo "run-demo.sh: warning: cluster.sh stop failed" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$HERE/ensure-deps.sh" demo
# --features cli: the same build as c_tests/CMakeLists.txt asks for (the operator command too).
"$CARGO" build --release --features cli
cmake -S "$HERE" -B "$BUILD_DIR" -DCARGO="$(command -v "$CARGO")" >/dev/null
cmake --build "$BUILD_DIR" --target ors_demo --parallel "$(nproc 2>/dev/null || echo 2)"

"$HERE/cluster.sh" start
export ORS_DEMO_CONFIG="redis-nodes=127.0.0.1:$ORS_CLUSTER_PORT;127.0.0.1:$((ORS_CLUSTER_PORT + 1)) cluster-name=demo log-level=info"
"$BUILD_DIR/ors_demo" "$@"
