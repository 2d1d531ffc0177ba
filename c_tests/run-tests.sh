#!/usr/bin/env bash
# The test command: Rust unit tests, the release library, then the C/C++ test
# programs under ctest against a local Redis Cluster (started and stopped by
# the ctest fixtures, and stopped here again on any exit).
#
#   c_tests/run-tests.sh [ctest arguments...]     e.g. -R test_init, -L core, -LE chaos, -V
#
# ctest labels: core (the C harness), chaos (the chaos suite, on a cluster of
# its own that it kills, freezes, reshards and restarts; a few minutes),
# netfault (the network-fault suite, c_tests/netfault/: each test in network
# and pid namespaces of its own with a cluster on 127.0.0.11-16 and iptables
# rules; needs root and namespaces, skipped otherwise, with the reason
# printed at the end; ORS_NETFAULT_LIB=<libors_redis.so> runs it against
# another build; about 5 minutes),
# netshape (real network shapes: host-name endpoints, a seed name resolving
# to several nodes, TLS names per node, DNS that stops answering, nodes behind
# NAT reached through redis-address-map, a cluster on ::1;
# c_tests/netfault/ns_names.c under netns.sh --hostnames, with the test's own
# /etc/hosts and /etc/resolv.conf, and c_tests/netfault/nf_shape.c under
# --announce-ip and --ipv6; run, skipped and required as netfault; about
# a minute and a half),
# package (cmake --install and consumers of the installed tree; with
# ORS_TESTS_PORTABLE_LIB also the portable build), valgrind (with
# ORS_TESTS_VALGRIND=1), fixture.
#
# Environment: ORS_TEST_PORT (first cluster port, default 7000),
# ORS_STANDALONE_PORT (default 7010), ORS_CHAOS_PORT (first port of the chaos
# cluster, default 7040), ORS_ACL_PORT (first port of the ACL cluster,
# default 7050), ORS_TESTS_BUILD_DIR (default target/c_tests-build),
# CARGO, REDIS_SERVER, REDIS_CLI, ORS_SKIP_CARGO_TEST=1 to skip `cargo test`,
# ORS_TESTS_VALGRIND=1 to run every core test program a second time under
# valgrind (ctest label valgrind), ORS_TESTS_SANITIZE=1 to build the test
# programs with AddressSanitizer and UBSan (use a build dir of its own, e.g.
# ORS_TESTS_BUILD_DIR=target/c_tests-asan, and -L core),
# ORS_TESTS_PORTABLE_LIB=target/x86_64-unknown-linux-gnu/release/libors_redis.so
# to check and run tests against the portable build (cmake/portable-build.sh),
# ORS_NETFAULT_REQUIRE=1 to fail the netfault tests that cannot run rather
# than skip them (the default under CI), ORS_TESTS_OLD_RELEASE (the release
# the rolling-upgrade test pairs with this one, default a018743, built by
# c_tests/build-old-release.sh; none to leave the test out).
#
# First installs what the run needs (c_tests/ensure-deps.sh, from
# c_tests/deps.txt): part core, netfault as root, valgrind with
# ORS_TESTS_VALGRIND=1.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
cd "$REPO"

CARGO=${CARGO:-cargo}
export ORS_TEST_PORT=${ORS_TEST_PORT:-7000}
export ORS_STANDALONE_PORT=${ORS_STANDALONE_PORT:-7010}
export ORS_CLUSTER_PORT=$ORS_TEST_PORT
export ORS_CHAOS_PORT=${ORS_CHAOS_PORT:-7040}
export ORS_ACL_PORT=${ORS_ACL_PORT:-7050}
CHAOS_DIR=$REPO/target/chaos-cluster
BUILD_DIR=${ORS_TESTS_BUILD_DIR:-$REPO/target/c_tests-build}
if [[ "${ORS_TESTS_SANITIZE:-}" == 1 && "${ORS_TESTS_VALGRIND:-}" == 1 ]]; then
    echo "run-tests.sh: ORS_TESTS_SANITIZE=1 and ORS_TESTS_VALGRIND=1 do not mix (run twice, two build dirs)" >&2
    exit 2
fi

step() { printf '\n=== %s\n' "$*"; }

cleanup() {
    local rc=$?
    "$HERE/cluster.sh" stop >/dev/null 2>&1 || echo "run-tests.sh: warning: cluster.sh stop failed" >&2
    "$HERE/standalone.sh" stop >/dev/null 2>&1 || echo "run-tests.sh: warning: standalone.sh stop failed" >&2
    ORS_CLUSTER_PORT=$ORS_CHAOS_PORT ORS_CLUSTER_DIR=$CHAOS_DIR "$HERE/cluster.sh" stop >/dev/null 2>&1 ||
        echo "run-tests.sh: warning: cluster.sh stop (chaos cluster) failed" >&2
    if ((rc == 0)); then
        printf '\n=== all tests passed\n'
    else
        printf '\n=== FAILED (exit code %d)\n' "$rc" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

parts=(core)
[[ "$(id -u)" -ne 0 ]] || parts+=(netfault)
[[ "${ORS_TESTS_VALGRIND:-}" != 1 ]] || parts+=(valgrind)
"$HERE/ensure-deps.sh" "${parts[@]}"
# CI must run the network-fault suite, not skip it.
if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    export ORS_NETFAULT_REQUIRE=${ORS_NETFAULT_REQUIRE:-1}
fi

if [[ "${ORS_SKIP_CARGO_TEST:-}" != 1 ]]; then
    # --features cli: the operator command and its test (tests/ors_redis_cli.rs) too.
    step "cargo test --release --features cli"
    "$CARGO" test --release --features cli
fi

step "cargo build --release --features cli"
"$CARGO" build --release --features cli

portable_lib=${ORS_TESTS_PORTABLE_LIB:-}
[[ -z "$portable_lib" ]] || portable_lib=$(realpath "$portable_lib")

# The rolling-upgrade test (rolling_upgrade) needs the release before
# compressed values; ORS_TESTS_OLD_RELEASE=none leaves it out.
old_lib_dir=""
if [[ "${ORS_TESTS_OLD_RELEASE:-a018743}" != none ]]; then
    step "the older release for the rolling-upgrade test (c_tests/build-old-release.sh ${ORS_TESTS_OLD_RELEASE:-a018743})"
    old_rc=0
    old_lib_dir=$("$HERE/build-old-release.sh" "${ORS_TESTS_OLD_RELEASE:-a018743}") || old_rc=$?
    if ((old_rc != 0)); then
        if [[ "${CI:-}" == true || "${CI:-}" == 1 || $old_rc -ne 3 ]]; then
            exit "$old_rc"
        fi
        echo "run-tests.sh: the rolling-upgrade test is left out" >&2
        old_lib_dir=""
    fi
fi

step "cmake configure ($BUILD_DIR)"
cmake -S "$HERE" -B "$BUILD_DIR" \
    -DCARGO="$(command -v "$CARGO")" \
    -DORS_TEST_PORT="$ORS_TEST_PORT" \
    -DORS_STANDALONE_PORT="$ORS_STANDALONE_PORT" \
    -DREDIS_CLI="${REDIS_CLI:-redis-cli}" \
    -DREDIS_SERVER="${REDIS_SERVER:-redis-server}" \
    -DORS_CHAOS_PORT="$ORS_CHAOS_PORT" \
    -DORS_ACL_PORT="$ORS_ACL_PORT" \
    -DORS_CHAOS_DIR="$CHAOS_DIR" \
    -DORS_TESTS_VALGRIND="$([[ "${ORS_TESTS_VALGRIND:-}" == 1 ]] && echo ON || echo OFF)" \
    -DORS_SANITIZE="$([[ "${ORS_TESTS_SANITIZE:-}" == 1 ]] && echo ON || echo OFF)" \
    -DORS_TESTS_PORTABLE_LIB="$portable_lib" \
    -DORS_TESTS_OLD_LIB_DIR="$old_lib_dir"

step "cmake build"
cmake --build "$BUILD_DIR" --parallel "$(nproc 2>/dev/null || echo 2)"

step "ctest (cluster on 127.0.0.1:$ORS_TEST_PORT-$((ORS_TEST_PORT + 5)), standalone on $ORS_STANDALONE_PORT, chaos cluster on $ORS_CHAOS_PORT-$((ORS_CHAOS_PORT + 5)))"
rc=0
ctest --test-dir "$BUILD_DIR" --output-on-failure "$@" || rc=$?
log=$BUILD_DIR/Testing/Temporary/LastTest.log

# The chaos, netfault and netshape suites' measurements ("# FIGURE" lines).
if grep -q '# FIGURE' "$log" 2>/dev/null; then
    step "figures (chaos, netfault, netshape)"
    grep -h '# FIGURE' "$log" | sed 's/^.*# FIGURE /  /'
fi
# Why tests were skipped (ctest shows only that they were): one line each.
if grep -q ': SKIP: ' "$log" 2>/dev/null; then
    step "skipped"
    grep -h ': SKIP: ' "$log" | sort | uniq -c | sed 's/^ *\([0-9]*\) /  \1 test(s): /'
fi
exit "$rc"
