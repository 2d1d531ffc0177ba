#!/usr/bin/env bash
# Runs one network-fault test (ctest labels netfault and netshape) in
# namespaces of its own:
#
#   c_tests/netfault/netns.sh [--no-cluster] [--names] [--hostnames] [--tls] [--ipv6] [--announce-ip]
#       PROGRAM [ARGS...]
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
# --names: the test's own /etc/hosts, /etc/resolv.conf and /etc/nsswitch.conf
# (files in the data folder, bind-mounted in the private mount namespace;
# hosts: files dns): the resolver is 127.0.0.53, where nothing answers (a
# test blackholes it with iptables to make it silent), and ORS_NETNS_HOSTS
# names the hosts file, which a test rewrites in place (same inode) to take
# names away or give them back (glibc reads it at every lookup).
# --hostnames (implies --names): the nodes announce host names redis-1 ..
# redis-6 (cluster-announce-hostname, cluster-preferred-endpoint-type
# hostname; Redis 7+), listed in the hosts file, and a configuration
# endpoint as a managed service has: redis-cfg:6379 resolves to 127.0.0.21-23,
# which iptables (nat OUTPUT, DNAT) turn into the first three nodes;
# ORS_NETNS_SEED=redis-cfg:6379.
# --tls (with --hostnames): the nodes speak TLS only, each with a certificate
# for its own name alone (node 1's for redis-cfg too, the configuration
# endpoint); ORS_NETNS_TLS is the folder with ca.pem (tls-certs.sh).
# --ipv6: every node on ::1 (and 127.0.0.1 for this script and redis-cli),
# announcing ::1: the library sees IPv6 only.
# --announce-ip: node i listens on 127.0.0.(11+i) but announces
# 127.0.0.(111+i), where nothing listens: a cluster behind NAT. A DNAT rule
# (iptables nat table, OUTPUT) takes the nodes' own connections there to
# 127.0.0.(11+i); the library's, from 127.0.0.1, are refused, as from a host
# outside the NAT, unless redis-address-map maps them.
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
    for tool in unshare ip iptables mount; do
        command -v "$tool" >/dev/null 2>&1 ||
            cannot_run "'$tool' not found (c_tests/ensure-deps.sh netfault installs util-linux, iproute2, iptables)"
    done
    # --mount-proc makes a mount namespace too: --names bind-mounts in it.
    namespaces=(unshare --net --pid --fork --kill-child --mount-proc)
    if ! why=$("${namespaces[@]}" iptables -S 2>&1 >/dev/null); then
        cannot_run "no network namespace with iptables rules here: $(head -n 1 <<<"$why")"
    fi
    exec "${namespaces[@]}" env ORS_NETNS_INSIDE=1 "$0" "$@"
fi

start_cluster=1 names=0 hostnames=0 tls=0 shape_ipv6=0 shape_announce=0
while (($#)); do
    case "$1" in
    --no-cluster) start_cluster=0 ;;
    --names) names=1 ;;
    --hostnames) names=1 hostnames=1 ;;
    --tls) tls=1 ;;
    --ipv6) shape_ipv6=1 ;;
    --announce-ip) shape_announce=1 ;;
    *) break ;;
    esac
    shift
done
(($# >= 1)) || {
    echo "usage: $0 [--no-cluster] [--names] [--hostnames] [--tls] [--ipv6] [--announce-ip] PROGRAM [ARGS...]" >&2
    exit 2
}
((tls == 0 || hostnames == 1)) || { echo "$PROG: --tls needs --hostnames" >&2; exit 2; }
((shape_ipv6 == 0 || shape_announce == 0)) || { echo "$PROG: --announce-ip is for IPv4 nodes, not with --ipv6" >&2; exit 2; }

ip link set lo up
export ORS_CLUSTER_HOSTS="127.0.0.11 127.0.0.12 127.0.0.13 127.0.0.14 127.0.0.15 127.0.0.16"
export ORS_CLUSTER_PORT=${ORS_NETFAULT_PORT:-7000}
export ORS_CHAOS_PORT=$ORS_CLUSTER_PORT ORS_TEST_PORT=$ORS_CLUSTER_PORT
export ORS_CLUSTER_DIR=${ORS_NETFAULT_DIR:-$REPO/target/netfault/$(basename "$1")}
export ORS_CLUSTER_NODE_TIMEOUT=${ORS_CLUSTER_NODE_TIMEOUT:-1000}
export ORS_CLUSTER_SH=$CLUSTER_SH

# The names of the nodes, the configuration endpoint's addresses (each
# DNATed to a node) and the resolver nobody answers at.
NODE_NAMES=(redis-1 redis-2 redis-3 redis-4 redis-5 redis-6)
CFG_ADDRS=(127.0.0.21 127.0.0.22 127.0.0.23)
CFG_PORT=6379
if ((names)); then
    etc=$ORS_CLUSTER_DIR/etc
    mkdir -p "$etc"
    {
        printf '%s\n' "127.0.0.1 localhost" "::1 localhost ip6-localhost"
        if ((hostnames)); then
            for i in "${!NODE_NAMES[@]}"; do printf '127.0.0.%d %s\n' $((11 + i)) "${NODE_NAMES[i]}"; done
            for a in "${CFG_ADDRS[@]}"; do printf '%s redis-cfg\n' "$a"; done
        fi
    } >"$etc/hosts"
    printf '%s\n' "nameserver 127.0.0.53" "options timeout:5 attempts:2" >"$etc/resolv.conf"
    sed -e 's/^hosts:.*/hosts: files dns/' /etc/nsswitch.conf >"$etc/nsswitch.conf"
    grep -q '^hosts:' "$etc/nsswitch.conf" || echo "hosts: files dns" >>"$etc/nsswitch.conf"
    for f in hosts resolv.conf nsswitch.conf; do mount --bind "$etc/$f" "/etc/$f"; done
    export ORS_NETNS_HOSTS=$etc/hosts
fi
if ((hostnames)); then
    export ORS_CLUSTER_HOSTNAMES="${NODE_NAMES[*]}"
    export ORS_NETNS_SEED=redis-cfg:$CFG_PORT
    for i in "${!CFG_ADDRS[@]}"; do
        iptables -w 10 -t nat -A OUTPUT -d "${CFG_ADDRS[i]}" -p tcp --dport "$CFG_PORT" \
            -j DNAT --to-destination "127.0.0.$((11 + i)):$((ORS_CLUSTER_PORT + i))"
    done
fi
if ((tls)); then
    export ORS_NETNS_TLS=$ORS_CLUSTER_DIR/tls
    "$HERE/../tls-certs.sh" "$ORS_NETNS_TLS" >/dev/null
    "$HERE/../tls-certs.sh" --node-certs "$ORS_NETNS_TLS" "$ORS_CLUSTER_PORT" \
        "redis-1,redis-cfg" redis-2 redis-3 redis-4 redis-5 redis-6 >/dev/null
    export ORS_CLUSTER_TLS_DIR=$ORS_NETNS_TLS
    # redis-cli for everyone (cluster.sh, the program's own calls), with TLS.
    cli_tls=$ORS_NETNS_TLS/redis-cli
    printf '#!/bin/sh\nexec %s --tls --cacert %s/ca.pem --cert %s/client.pem --key %s/client.key "$@"\n' \
        "$(command -v "${REDIS_CLI:-redis-cli}")" "$ORS_NETNS_TLS" "$ORS_NETNS_TLS" "$ORS_NETNS_TLS" >"$cli_tls"
    chmod +x "$cli_tls"
    export REDIS_CLI=$cli_tls
fi
# IPv6: every node on ::1.
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
# NAT: nodes announce addresses nothing listens on.
if ((shape_announce)); then
    announced=()
    for i in 1 2 3 4 5 6; do
        announced+=("127.0.0.11$i")
        iptables -w 10 -t nat -A OUTPUT -p tcp ! -s 127.0.0.1 -d "127.0.0.11$i" -j DNAT --to-destination "127.0.0.1$i" 2>/dev/null ||
            cannot_run "no iptables nat table (DNAT) in the namespace"
    done
    export ORS_CLUSTER_ANNOUNCE_HOSTS="${announced[*]}"
fi

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
