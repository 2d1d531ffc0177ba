#!/usr/bin/env bash
# TLS servers for the TLS tests (ctest label tls):
#   - a TLS-only cluster (3 masters + 3 replicas, tls-cluster, tls-replication,
#     tls-auth-clients yes) on ORS_TLS_CLUSTER_PORT.. (default 7080-7085);
#   - single-node TLS clusters that present a bad certificate: an expired one
#     on ORS_TLS_BAD_PORT (default 7090) and one for another host name on
#     ORS_TLS_BAD_PORT+1.
# Certificates come from tls-certs.sh, in ORS_TLS_DIR (default target/tls-test).
#
#   c_tests/tls-servers.sh start|stop
set -euo pipefail

PROG=tls-servers.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
ROOT=${ORS_TLS_DIR:-$REPO/target/tls-test}
CERTS=$ROOT/certs
CLUSTER_PORT=${ORS_TLS_CLUSTER_PORT:-7080}
BAD_PORT=${ORS_TLS_BAD_PORT:-7090}
# shellcheck source=c_tests/redis-lib.sh
. "$HERE/redis-lib.sh"

cluster() {
    ORS_CLUSTER_PORT=$CLUSTER_PORT ORS_CLUSTER_DIR=$ROOT/cluster ORS_CLUSTER_TLS_DIR=$CERTS \
        ORS_CLUSTER_TLS_AUTH_CLIENTS=yes \
        ORS_REDIS_CLI_ARGS="--tls --cacert $CERTS/ca.pem --cert $CERTS/client.pem --key $CERTS/client.key" \
        "$HERE/cluster.sh" "$@"
}

# A one-node cluster serving every slot, presenting certificate NAME.
start_single() {
    local port=$1 name=$2 dir=$ROOT/single-$1
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '%s\n' "port 0" "tls-port $port" "bind 127.0.0.1" "protected-mode no" "daemonize yes" \
        "dir $dir" "pidfile $dir/redis.pid" "logfile $dir/redis.log" "cluster-enabled yes" \
        "cluster-config-file nodes.conf" "appendonly no" "save \"\"" \
        "tls-cert-file $CERTS/$name.pem" "tls-key-file $CERTS/$name.key" \
        "tls-ca-cert-file $CERTS/ca.pem" "tls-auth-clients no" "tls-cluster yes" >"$dir/redis.conf"
    "$REDIS_SERVER" "$dir/redis.conf" >/dev/null 9>&- || die "redis-server on $port failed to start"
    local tries=0
    # --insecure: these certificates are bad on purpose.
    until timeout 5 "$REDIS_CLI" --tls --insecure -h 127.0.0.1 -p "$port" cluster addslotsrange 0 16383 \
        >/dev/null 2>&1; do
        ((++tries < 50)) || die "node $port did not take the slots"
        sleep 0.1
    done
    say "single-node TLS cluster on 127.0.0.1:$port with the $name certificate"
}

stop_single() {
    local port=$1 pid
    pid=$(pid_from_file "$ROOT/single-$port/redis.pid")
    if [[ -n "$pid" ]] && is_our_redis "$pid" "$port"; then
        stop_pids "$pid"
        say "stopped the node on $port"
    fi
    rm -f "$ROOT/single-$port/redis.pid"
}

case "${1:-}" in
start)
    need_binaries
    "$HERE/tls-certs.sh" "$CERTS"
    cluster start
    stop_single "$BAD_PORT"
    stop_single $((BAD_PORT + 1))
    start_single "$BAD_PORT" expired
    start_single $((BAD_PORT + 1)) wrongname
    ;;
stop)
    cluster stop
    stop_single "$BAD_PORT"
    stop_single $((BAD_PORT + 1))
    ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
