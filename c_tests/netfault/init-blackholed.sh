#!/usr/bin/env bash
# init with blackholed nodes: init's time is bounded by about one
# redis-connect-timeout per phase, and its status is one the header lists.
#
#   c_tests/netfault/init-blackholed.sh      (as root; needs unshare, ip, iptables, redis-server, cc)
#
# Self-contained: it re-runs itself in a private network namespace
# (unshare -n), where 127.0.0.11..16 are the nodes' addresses, and leaves no
# process, namespace or rule behind. Cases, each printing its figure:
#   1. all 6 seeds blackholed (iptables DROP, no reset): ORS_ERR_CONNECTION
#      "every seed node ... timed out" within connect-timeout + 500 ms
#      (the seeds are tried at once, not one connect-timeout each);
#   2. a cluster of 3 masters on .11-.13, seeds .14 .15 .16 blackholed and
#      .11 last: ORS_OK within 500 ms (the seeds are tried at once);
#   3. the same cluster, the client port of masters .12 and .13 blackholed
#      (the cluster bus still works): ORS_OK within connect-timeout +
#      socket-timeout + 500 ms (the masters are checked at once).
# Environment: CONNECT_TIMEOUT (ms, default 1000), REDIS_SERVER, REDIS_CLI,
# CARGO_TARGET (default <repo>/target/release, holding libors_redis.so).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CONNECT_TIMEOUT=${CONNECT_TIMEOUT:-1000}
SOCKET_TIMEOUT=1000
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
LIBDIR=${CARGO_TARGET:-$REPO/target/release}
PORT=7000

if [[ "${1:-}" != --inside ]]; then
    [[ $(id -u) == 0 ]] || { echo "init-blackholed.sh: needs root (unshare -n, iptables)" >&2; exit 77; }
    [[ -e "$LIBDIR/libors_redis.so" ]] || { echo "init-blackholed.sh: no $LIBDIR/libors_redis.so (cargo build --release)" >&2; exit 2; }
    exec unshare -n "$0" --inside
fi

WORK=$(mktemp -d /tmp/ors-init-blackholed.XXXXXX)
cleanup() {
    local rc=$?
    for pidfile in "$WORK"/n*/redis.pid; do
        [[ -e "$pidfile" ]] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.2
    for pidfile in "$WORK"/n*/redis.pid; do
        [[ -e "$pidfile" ]] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT

ip link set lo up
failed=0
check() { # check OK|FAIL-condition message
    if [[ "$1" == 1 ]]; then echo "ok - $2"; else echo "FAIL - $2"; failed=1; fi
}

# The library's SONAME is libors_redis.so.<major>: link through a folder
# that has that name too.
mkdir -p "$WORK/lib"
soname=$(objdump -p "$LIBDIR/libors_redis.so" | awk '/SONAME/ {print $2}')
ln -s "$LIBDIR/libors_redis.so" "$WORK/lib/libors_redis.so"
[[ -z "$soname" ]] || ln -s "$LIBDIR/libors_redis.so" "$WORK/lib/$soname"
cc -std=c99 -Wall -Wextra -Werror -I"$REPO/include" "$HERE/init_time.c" -o "$WORK/init_time" \
    -L"$WORK/lib" -lors_redis -Wl,-rpath,"$WORK/lib"

# init_time CONFIG -> sets status, ms, error
run_init() {
    local out
    out=$(timeout 60 "$WORK/init_time" "$1" 2>/dev/null) || echo "# init_time failed (exit $?)"
    status=$(sed -n 's/^status=\([^ ]*\) .*/\1/p' <<<"$out")
    ms=$(sed -n 's/.* ms=\([0-9]*\) .*/\1/p' <<<"$out")
    error=${out#*error=}
}

timeouts="redis-connect-timeout=$CONNECT_TIMEOUT redis-socket-timeout=$SOCKET_TIMEOUT"

# 1. Every seed blackholed: nothing answers, not even with a reset.
for i in 11 12 13 14 15 16; do
    iptables -A INPUT -d 127.0.0.$i -p tcp -j DROP
done
seeds="127.0.0.11:$PORT;127.0.0.12:$PORT;127.0.0.13:$PORT;127.0.0.14:$PORT;127.0.0.15:$PORT;127.0.0.16:$PORT"
run_init "redis-nodes=$seeds cluster-name=netfault $timeouts"
echo "# FIGURE init with 6 blackholed seeds, redis-connect-timeout=$CONNECT_TIMEOUT: $ms ms, $status ($error)"
check "$([[ $status == ORS_ERR_CONNECTION ]] && echo 1)" "6 blackholed seeds: ORS_ERR_CONNECTION (got $status)"
check "$([[ $error == *"every seed"*"timed out"* ]] && echo 1)" "the message says every seed timed out"
check "$([[ -n $ms && $ms -lt $((CONNECT_TIMEOUT + 500)) ]] && echo 1)" \
    "6 blackholed seeds: init within connect-timeout + 500 ms ($ms ms)"
iptables -F INPUT

# A cluster of 3 masters (no replicas) on .11-.13; node-to-node traffic
# leaves from each node's own address.
for i in 11 12 13; do
    mkdir -p "$WORK/n$i"
    "$REDIS_SERVER" --bind 127.0.0.$i --bind-source-addr 127.0.0.$i --port $PORT --dir "$WORK/n$i" \
        --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
        --save '' --appendonly no --daemonize yes --pidfile "$WORK/n$i/redis.pid" \
        --logfile "$WORK/n$i/redis.log" >/dev/null
done
for i in 11 12 13; do
    for _ in $(seq 50); do "$REDIS_CLI" -h 127.0.0.$i -p $PORT ping >/dev/null 2>&1 && break; sleep 0.1; done
done
"$REDIS_CLI" --cluster create 127.0.0.11:$PORT 127.0.0.12:$PORT 127.0.0.13:$PORT --cluster-yes >/dev/null
for _ in $(seq 100); do
    ok=1
    for i in 11 12 13; do
        "$REDIS_CLI" -h 127.0.0.$i -p $PORT cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    ((ok)) && break
    sleep 0.2
done

# 2. Three blackholed seeds before a good one.
for i in 14 15 16; do
    iptables -A INPUT -d 127.0.0.$i -p tcp -j DROP
done
run_init "redis-nodes=127.0.0.14:$PORT;127.0.0.15:$PORT;127.0.0.16:$PORT;127.0.0.11:$PORT cluster-name=netfault $timeouts"
echo "# FIGURE init with 3 blackholed seeds before a good one: $ms ms, $status"
check "$([[ $status == ORS_OK ]] && echo 1)" "3 blackholed seeds, then a good one: ORS_OK (got $status: $error)"
check "$([[ -n $ms && $ms -lt 500 ]] && echo 1)" "the good seed is used at once ($ms ms)"

# 3. Two masters' client ports blackholed; the cluster bus (port+10000) works.
for i in 12 13; do
    iptables -A INPUT -d 127.0.0.$i -p tcp --dport $PORT -j DROP
done
run_init "redis-nodes=127.0.0.11:$PORT cluster-name=netfault $timeouts"
bound=$((CONNECT_TIMEOUT + SOCKET_TIMEOUT + 500))
echo "# FIGURE init with 2 of 3 masters' client ports blackholed: $ms ms, $status"
check "$([[ $status == ORS_OK ]] && echo 1)" "2 masters blackholed: ORS_OK with warnings (got $status: $error)"
check "$([[ -n $ms && $ms -lt $bound ]] && echo 1)" "the masters are checked at once: init within $bound ms ($ms ms)"
iptables -F INPUT

exit "$failed"
