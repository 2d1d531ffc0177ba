#!/usr/bin/env bash
# Runs one network-fault test (ctest label netfault) in namespaces of its own:
#
#   c_tests/netfault/netns.sh [--no-cluster] [--ipv6] [--announce-ip] PROGRAM [ARGS...]
#
# unshare gives the test a private network namespace (its own loopback and
# iptables rules) and a private pid namespace whose init is this script:
# whenever it ends, normally, on a signal or killed by ctest's TIMEOUT
# (unshare --kill-child), the kernel kills every process in it, the Redis
# nodes too, and the network namespace goes with its rules. Nothing is ever
# added to the host's namespace.
#
# Inside, a 3-master + 3-replica cluster (cluster.sh) runs on 127.0.0.11-16,
# ports ORS_NETFAULT_PORT.. +5 (default 7000; private to the namespace): node
# i binds 127.0.0.(11+i) and 127.0.0.1, and talks to other nodes from its own
# address (bind-source-addr). The library reaches the nodes at their own
# addresses from 127.0.0.1, so a rule can tell client traffic (-s 127.0.0.1)
# from node-to-node traffic; the test's own redis-cli talks to 127.0.0.1,
# which no rule touches.
#
# Network shapes (issue 22, ctest label netshape):
#   --ipv6         every node on ::1 (and 127.0.0.1 for this script and
#                  redis-cli), announcing ::1: the library sees IPv6 only.
#   --announce-ip  node i listens on 127.0.0.(11+i) but announces
#                  127.0.0.(111+i), where nothing listens: a cluster behind
#                  NAT. A DNAT rule (iptables nat table, OUTPUT) takes the
#                  nodes' own connections there to 127.0.0.(11+i); the
#                  library's, from 127.0.0.1, are refused, as from a host
#                  outside the NAT, unless redis-address-map maps them.
#
# Environment: ORS_NETFAULT_DIR (data folder, default target/netfault/<program>),
# ORS_NETFAULT_LIB (run against this libors_redis.so instead of the build the
# program links to), ORS_NETFAULT_PORT, REDIS_SERVER, REDIS_CLI,
# ORS_NETFAULT_REQUIRE=1 (a test that cannot run fails instead of being
# skipped; run-tests.sh sets it under CI).
# Exit status: the program's; 77 (ctest skip), after one line saying why,
# when the test cannot run here: not root, unshare, ip or iptables missing
# (c_tests/ensure-deps.sh netfault installs them), or no namespace with
# iptables rules can be made (a container without the privilege, say).
set -euo pipefail

PROG=netns.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CLUSTER_SH=$HERE/../cluster.sh

cannot_run() {
    if [[ "${ORS_NETFAULT_REQUIRE:-}" == 1 ]]; then
        echo "$PROG: error: $* (ORS_NETFAULT_REQUIRE=1: the suite must run)" >&2
        exit 1
    fi
    echo "$PROG: SKIP: $*" >&2
    exit 77
}

if [[ "${ORS_NETNS_INSIDE:-}" != 1 ]]; then
    [[ "$(id -u)" -eq 0 ]] || cannot_run "network namespaces and iptables rules need root (uid $(id -u))"
    for tool in unshare ip iptables; do
        command -v "$tool" >/dev/null 2>&1 ||
            cannot_run "'$tool' not found (c_tests/ensure-deps.sh netfault installs util-linux, iproute2, iptables)"
    done
    namespaces=(unshare --net --pid --fork --kill-child --mount-proc)
    if ! why=$("${namespaces[@]}" iptables -S 2>&1 >/dev/null); then
        cannot_run "no network namespace with iptables rules here: $(head -n 1 <<<"$why")"
    fi
    exec "${namespaces[@]}" env ORS_NETNS_INSIDE=1 "$0" "$@"
fi

start_cluster=1
if [[ "${1:-}" == --no-cluster ]]; then
    start_cluster=0
    shift
fi
# --- network shapes (issue 22): --ipv6, --announce-ip ---
shape_ipv6=0 shape_announce=0
while [[ "${1:-}" == --ipv6 || "${1:-}" == --announce-ip ]]; do
    case "$1" in
    --ipv6) shape_ipv6=1 ;;
    --announce-ip) shape_announce=1 ;;
    esac
    shift
done
# --- end of network shapes ---
(($# >= 1)) || { echo "usage: $0 [--no-cluster] [--ipv6] [--announce-ip] PROGRAM [ARGS...]" >&2; exit 2; }

ip link set lo up
export ORS_CLUSTER_HOSTS="127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 127.0.0.15 127.0.0.16"
export ORS_CLUSTER_PORT=${ORS_NETFAULT_PORT:-7000}
export ORS_CHAOS_PORT=$ORS_CLUSTER_PORT ORS_TEST_PORT=$ORS_CLUSTER_PORT
export ORS_CLUSTER_DIR=${ORS_NETFAULT_DIR:-$REPO/target/netfault/$(basename "$1")}
export ORS_CLUSTER_NODE_TIMEOUT=${ORS_CLUSTER_NODE_TIMEOUT:-1000}
export ORS_CLUSTER_SH=$CLUSTER_SH

# --- network shapes (issue 22): --ipv6, --announce-ip ---
if ((shape_ipv6)); then
    v6_off=/proc/sys/net/ipv6/conf/lo/disable_ipv6
    [[ -r "$v6_off" ]] || cannot_run "no IPv6 in this kernel ($v6_off missing)"
    if [[ "$(cat "$v6_off")" != 0 ]]; then
        { echo 0 >"$v6_off"; } 2>/dev/null || cannot_run "IPv6 is disabled on lo and cannot be enabled"
        ip link set lo down && ip link set lo up
    fi
    ip -6 addr show dev lo | grep -q 'inet6 ::1/128' || cannot_run "no ::1 on lo in the namespace (IPv6 unavailable)"
    export ORS_CLUSTER_HOSTS="::1 ::1 ::1 ::1 ::1 ::1"
fi
if ((shape_announce)); then
    ((shape_ipv6 == 0)) || { echo "$PROG: error: --announce-ip is for IPv4 nodes, not with --ipv6" >&2; exit 2; }
    announced=()
    for i in 1 2 3 4 5 6; do
        announced+=("127.0.0.11$i")
        iptables -w 10 -t nat -A OUTPUT -p tcp ! -s 127.0.0.1 -d "127.0.0.11$i" -j DNAT --to-destination "127.0.0.1$i" 2>/dev/null ||
            cannot_run "no iptables nat table (DNAT) in the namespace"
    done
    export ORS_CLUSTER_ANNOUNCE_HOSTS="${announced[*]}"
fi
# --- end of network shapes ---

if [[ -n "${ORS_NETFAULT_LIB:-}" ]]; then
    lib=$(realpath "$ORS_NETFAULT_LIB")
    [[ -r "$lib" ]] || { echo "$PROG: error: ORS_NETFAULT_LIB=$ORS_NETFAULT_LIB is not readable" >&2; exit 1; }
    # LD_LIBRARY_PATH wins over the programs' RUNPATH; the name is the SONAME.
    libdir=$ORS_CLUSTER_DIR/lib
    mkdir -p "$libdir"
    ln -sf "$lib" "$libdir/libors_redis.so.0"
    export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "# library under test: $lib"
fi

cleanup() {
    local rc=$?
    ((start_cluster == 0)) || "$CLUSTER_SH" stop >/dev/null 2>&1 || true
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

if ((start_cluster)); then
    mkdir -p "$ORS_CLUSTER_DIR"
    "$CLUSTER_SH" start
fi
"$@"
