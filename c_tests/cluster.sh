#!/usr/bin/env bash
# A local Redis Cluster for development and the C tests: 3 masters and 3
# replicas on 127.0.0.1, ports ORS_CLUSTER_PORT .. ORS_CLUSTER_PORT+5 (or 3
# masters alone, with ORS_CLUSTER_REPLICAS=0).
#
#   c_tests/cluster.sh start|stop|status|restart
#
# Node-level controls for the chaos tests (they keep every node's data):
#
#   c_tests/cluster.sh node-kill PORT [SIGNAL]   signal one node (default KILL;
#                                                 STOP freezes it, CONT thaws it)
#   c_tests/cluster.sh node-start PORT           restart a stopped node from its own
#                                                 dir, nodes.conf and AOF (no wipe)
#   c_tests/cluster.sh node-pid PORT              print the pid of the node (for a program
#                                                 that signals it itself, to time the signal)
#   c_tests/cluster.sh stop-all                  stop every node (SIGTERM), keep data
#   c_tests/cluster.sh resume                    start every stopped node from its
#                                                 data, wait until healthy
#   c_tests/cluster.sh wait-healthy [SECONDS]    wait until healthy (default ORS_CLUSTER_WAIT)
#
# Environment:
#   ORS_CLUSTER_PORT          first port (default 7000)
#   ORS_CLUSTER_DIR           data root, one folder per node (default <repo>/target/test-cluster)
#   ORS_CLUSTER_NODE_TIMEOUT  cluster-node-timeout in ms (default 2000)
#   ORS_CLUSTER_WAIT          seconds start waits for a healthy cluster (default 30)
#   ORS_CLUSTER_EXTRA_CONF    file whose lines are appended to every node's config
#   ORS_CLUSTER_REPLICAS      replicas per master: 1 (default, 6 nodes) or 0 (3 masters
#                             alone on PORT..PORT+2: for a benchmark whose data set
#                             would not fit in memory twice, bench/restore.sh --no-replicas)
#   ORS_CLUSTER_HOSTS         one loopback address per node, e.g. "127.0.0.11 ... 127.0.0.16"
#                             (netfault suite, inside a network namespace): node i binds
#                             its address and 127.0.0.1, announces its address and uses it
#                             as source of its node-to-node connections (bind-source-addr),
#                             so that iptables rules can tell them from client traffic;
#                             this script and redis-cli talk to 127.0.0.1 (default: all 127.0.0.1);
#                             "::1" six times: every node on ::1 too, announcing ::1 (IPv6)
#   ORS_CLUSTER_ANNOUNCE_HOSTS  with ORS_CLUSTER_HOSTS: one address per node that node i
#                             announces instead of its own (cluster-announce-ip), for a
#                             cluster behind NAT; the nodes reach each other there only
#                             through a NAT rule of the caller's (netfault/netns.sh --announce-ip)
#   ORS_CLUSTER_HOSTNAMES     one host name per node, e.g. "redis-1 ... redis-6": node i
#                             announces it (cluster-announce-hostname) and the cluster
#                             prefers host names as endpoints (cluster-preferred-endpoint-type
#                             hostname; Redis 7+): CLUSTER SLOTS, MOVED and ASK name nodes by it
#   ORS_CLUSTER_TLS_DIR       TLS only: a folder with ca.pem, server.pem, server.key
#                             (node-<port>.pem/.key instead, when there, for that node);
#                             nodes listen with TLS on their port (port 0, tls-port,
#                             tls-cluster, tls-replication); set ORS_REDIS_CLI_ARGS to
#                             "--tls --cacert ... --cert ... --key ..." to match
#   ORS_CLUSTER_TLS_AUTH_CLIENTS  with TLS: tls-auth-clients yes|no|optional (default no)
#                             (ACL users, requirepass/masterauth, TLS ...)
#   ORS_REDIS_CLI_ARGS        extra redis-cli arguments (e.g. --user/--pass) for this script
#   REDIS_SERVER, REDIS_CLI   binaries (default redis-server, redis-cli)
#
# Nodes are stopped by the pids in their pidfiles, never by name.
set -euo pipefail

PROG=cluster.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=c_tests/redis-lib.sh
. "$HERE/redis-lib.sh"

BASE_PORT=${ORS_CLUSTER_PORT:-7000}
DATA_ROOT=${ORS_CLUSTER_DIR:-$REPO/target/test-cluster}
NODE_TIMEOUT=${ORS_CLUSTER_NODE_TIMEOUT:-2000}
WAIT_LIMIT=${ORS_CLUSTER_WAIT:-30}
EXTRA_CONF=${ORS_CLUSTER_EXTRA_CONF:-}
TLS_DIR=${ORS_CLUSTER_TLS_DIR:-}
TLS_AUTH_CLIENTS=${ORS_CLUSTER_TLS_AUTH_CLIENTS:-no}
REPLICAS=${ORS_CLUSTER_REPLICAS:-1}
[[ "$REPLICAS" == 0 || "$REPLICAS" == 1 ]] || die "ORS_CLUSTER_REPLICAS must be 0 or 1, not '$REPLICAS'"
NODES=$((3 * (1 + REPLICAS)))

[[ "$BASE_PORT" =~ ^[0-9]+$ ]] || die "ORS_CLUSTER_PORT must be a number, not '$BASE_PORT'"
[[ "$NODE_TIMEOUT" =~ ^[0-9]+$ ]] || die "ORS_CLUSTER_NODE_TIMEOUT must be a number of ms"
[[ "$WAIT_LIMIT" =~ ^[0-9]+$ ]] || die "ORS_CLUSTER_WAIT must be a number of seconds"
# The cluster bus listens on port+10000; keep it below the ephemeral range.
((BASE_PORT >= 1024 && BASE_PORT + NODES - 1 + 10000 < 32768)) ||
    die "ORS_CLUSTER_PORT=$BASE_PORT: ports must be >= 1024 and port+10000 below 32768 (max $((32768 - 10000 - NODES)))"
mkdir -p "$DATA_ROOT"
DATA_ROOT=$(cd "$DATA_ROOT" && pwd)

PORTS=()
for ((i = 0; i < NODES; i++)); do PORTS+=($((BASE_PORT + i))); done
read -r -a HOSTS <<<"${ORS_CLUSTER_HOSTS:-}"
((${#HOSTS[@]} == 0 || ${#HOSTS[@]} == NODES)) || die "ORS_CLUSTER_HOSTS must list $NODES addresses, not '${ORS_CLUSTER_HOSTS:-}'"
read -r -a HOSTNAMES <<<"${ORS_CLUSTER_HOSTNAMES:-}"
((${#HOSTNAMES[@]} == 0 || ${#HOSTNAMES[@]} == NODES)) || die "ORS_CLUSTER_HOSTNAMES must list $NODES names, not '${ORS_CLUSTER_HOSTNAMES:-}'"
node_host() { if ((${#HOSTS[@]})); then printf '%s\n' "${HOSTS[$1 - BASE_PORT]}"; else printf '127.0.0.1\n'; fi; }
read -r -a ANNOUNCE_HOSTS <<<"${ORS_CLUSTER_ANNOUNCE_HOSTS:-}"
((${#ANNOUNCE_HOSTS[@]} == 0 || (${#HOSTS[@]} == NODES && ${#ANNOUNCE_HOSTS[@]} == NODES))) ||
    die "ORS_CLUSTER_ANNOUNCE_HOSTS must list $NODES addresses, with ORS_CLUSTER_HOSTS, not '${ORS_CLUSTER_ANNOUNCE_HOSTS:-}'"
node_announce() { if ((${#ANNOUNCE_HOSTS[@]})); then printf '%s\n' "${ANNOUNCE_HOSTS[$1 - BASE_PORT]}"; else node_host "$1"; fi; }
LAST_PORT=${PORTS[NODES - 1]}
RANGE="127.0.0.1:$BASE_PORT-$LAST_PORT"

node_dir() { printf '%s/%s\n' "$DATA_ROOT" "$1"; }
node_pidfile() { printf '%s/redis.pid\n' "$(node_dir "$1")"; }

# Sets HEALTH_REASON and returns 1 unless every node is up and agrees that
# the cluster is ok, every slot is served, and each master has an online
# replica (unless ORS_CLUSTER_REPLICAS=0).
HEALTH_REASON=""
healthy() {
    local port info state masters=0 replicas=0 role
    for port in "${PORTS[@]}"; do
        if ! pings "$port"; then
            HEALTH_REASON="node $port does not answer"
            return 1
        fi
        info=$(cli "$port" cluster info) || info=""
        state=$(info_field cluster_state <<<"$info" || true)
        if [[ "$state" != ok ]]; then
            HEALTH_REASON="node $port: cluster_state:${state:-?}"
            return 1
        fi
        if [[ "$(info_field cluster_slots_assigned <<<"$info" || true)" != 16384 ||
            "$(info_field cluster_slots_ok <<<"$info" || true)" != 16384 ]]; then
            HEALTH_REASON="node $port: not all 16384 slots assigned and ok"
            return 1
        fi
        if [[ "$(info_field cluster_known_nodes <<<"$info" || true)" != "$NODES" ]]; then
            HEALTH_REASON="node $port does not know all $NODES nodes yet"
            return 1
        fi
        info=$(cli "$port" info replication) || info=""
        role=$(info_field role <<<"$info" || true)
        case "$role" in
        master)
            masters=$((masters + 1))
            if ((REPLICAS > 0)) && ! grep -q '^slave[0-9]*:.*state=online' <<<"$info"; then
                HEALTH_REASON="master $port has no online replica"
                return 1
            fi
            ;;
        slave)
            replicas=$((replicas + 1))
            if [[ "$(info_field master_link_status <<<"$info" || true)" != up ]]; then
                HEALTH_REASON="replica $port: link to its master is not up"
                return 1
            fi
            ;;
        *)
            HEALTH_REASON="node $port: unknown role '${role:-?}'"
            return 1
            ;;
        esac
    done
    if ((masters != 3 || replicas != 3 * REPLICAS)); then
        HEALTH_REASON="$masters masters and $replicas replicas, want 3 and $((3 * REPLICAS))"
        return 1
    fi
    HEALTH_REASON=""
    return 0
}

# Is every port served by a node this script started (from this data dir)?
all_ours() {
    local port
    for port in "${PORTS[@]}"; do
        [[ -n "$(node_pid "$port" "$(node_pidfile "$port")")" ]] || return 1
    done
}

stop_nodes() {
    local port pid pids=() stopped=()
    for port in "${PORTS[@]}"; do
        pid=$(node_pid "$port" "$(node_pidfile "$port")")
        if [[ -n "$pid" ]]; then
            pids+=("$pid")
            stopped+=("$port")
        fi
    done
    if ((${#pids[@]} == 0)); then
        say "no cluster node running on $RANGE"
        return 0
    fi
    stop_pids "${pids[@]}"
    for port in "${PORTS[@]}"; do rm -f "$(node_pidfile "$port")"; done
    say "stopped ${#pids[@]} node(s) on port(s) ${stopped[*]}"
}

redis_major() {
    printf '%s\n' $(($(server_version_num) / 100))
}

write_conf() {
    local port=$1 dir major host bind="127.0.0.1" cert=server
    dir=$(node_dir "$port")
    major=$(redis_major)
    host=$(node_host "$port")
    [[ "$host" == 127.0.0.1 ]] || bind="$host 127.0.0.1"
    {
        printf '%s\n' \
            "# written by c_tests/cluster.sh" \
            "port $port" \
            "bind $bind" \
            "daemonize yes" \
            "dir $dir" \
            "pidfile $dir/redis.pid" \
            "logfile $dir/redis.log" \
            "cluster-enabled yes" \
            "cluster-config-file nodes.conf" \
            "cluster-node-timeout $NODE_TIMEOUT" \
            "appendonly yes" \
            "save \"\""
        common_conf_lines
        if [[ "$host" != 127.0.0.1 ]]; then
            printf '%s\n' "cluster-announce-ip $(node_announce "$port")"
            if ((major >= 7)); then printf '%s\n' "bind-source-addr $host"; fi
        fi
        if ((${#HOSTNAMES[@]})); then
            ((major >= 7)) || die "ORS_CLUSTER_HOSTNAMES needs Redis 7 or newer"
            printf '%s\n' "cluster-announce-hostname ${HOSTNAMES[port - BASE_PORT]}" \
                "cluster-preferred-endpoint-type hostname"
        fi
        # Lets tests use DEBUG SLEEP and friends over loopback (Redis 7+).
        if ((major >= 7)); then printf '%s\n' "enable-debug-command local"; fi
        if [[ -n "$TLS_DIR" ]]; then
            [[ ! -r "$TLS_DIR/node-$port.pem" ]] || cert=node-$port
            # Later lines win: the plain port is closed, TLS takes its number.
            printf '%s\n' \
                "port 0" \
                "tls-port $port" \
                "tls-cert-file $TLS_DIR/$cert.pem" \
                "tls-key-file $TLS_DIR/$cert.key" \
                "tls-ca-cert-file $TLS_DIR/ca.pem" \
                "tls-cluster yes" \
                "tls-replication yes" \
                "tls-auth-clients $TLS_AUTH_CLIENTS"
        fi
        append_extra_conf "$EXTRA_CONF"
    } >"$dir/redis.conf"
}

show_log_tail() {
    local port=$1 log
    log="$(node_dir "$port")/redis.log"
    [[ -r "$log" ]] && { echo "--- last lines of $log:" >&2; tail -n 20 "$log" >&2; }
    return 0
}

start_cluster() {
    need_binaries
    if all_ours && healthy; then
        say "cluster already running on $RANGE (cluster_state:ok)"
        return 0
    fi
    # Anything partial or broken: stop our leftovers and start from scratch.
    stop_nodes >/dev/null
    local port
    for port in "${PORTS[@]}"; do
        port_busy "$port" && die "port $port is in use by a process this script did not start"
        port_busy $((port + 10000)) && die "cluster bus port $((port + 10000)) is in use"
    done
    for port in "${PORTS[@]}"; do
        rm -rf "$(node_dir "$port")"
        mkdir -p "$(node_dir "$port")"
        write_conf "$port"
    done
    for port in "${PORTS[@]}"; do
        # 9>&-: the daemon must not inherit (and so hold) our lock.
        if ! "$REDIS_SERVER" "$(node_dir "$port")/redis.conf" >/dev/null 9>&-; then
            show_log_tail "$port"
            stop_nodes >/dev/null
            die "redis-server on port $port failed to start"
        fi
    done
    if ! wait_ping 15 "${PORTS[@]}"; then
        for port in "${PORTS[@]}"; do pings "$port" || show_log_tail "$port"; done
        stop_nodes >/dev/null
        die "nodes did not answer PING within 15s"
    fi

    local addrs=() create_log="$DATA_ROOT/create-$BASE_PORT.log"
    for port in "${PORTS[@]}"; do addrs+=("$(node_host "$port"):$port"); done
    if ! timeout 60 "$REDIS_CLI" "${ORS_CLI_ARGS[@]}" --cluster create "${addrs[@]}" \
        --cluster-replicas "$REPLICAS" --cluster-yes </dev/null >"$create_log" 2>&1; then
        cat "$create_log" >&2
        stop_nodes >/dev/null
        die "redis-cli --cluster create failed (log above, also in $create_log)"
    fi

    local deadline=$((SECONDS + WAIT_LIMIT))
    until healthy; do
        if ((SECONDS >= deadline)); then
            echo "--- cluster create output:" >&2
            cat "$create_log" >&2
            stop_nodes >/dev/null
            die "cluster not healthy after ${WAIT_LIMIT}s: $HEALTH_REASON"
        fi
        sleep 0.2
    done
    say "cluster up on $RANGE: 3 masters + $((3 * REPLICAS)) replicas, cluster_state:ok, data in $DATA_ROOT"
}

# Is PORT one of this cluster's ports?
our_port() {
    local port
    for port in "${PORTS[@]}"; do [[ "$port" == "$1" ]] && return 0; done
    return 1
}

# node-kill PORT [SIGNAL]: signals the node we started on PORT. After KILL
# (or TERM), waits until the process is gone, so that the port is free for
# node-start.
kill_node() {
    local port=$1 sig=${2:-KILL} pid deadline
    our_port "$port" || die "node-kill: $port is not a port of this cluster ($RANGE)"
    sig=${sig#SIG}
    [[ "$sig" =~ ^(KILL|TERM|STOP|CONT|INT)$ ]] || die "node-kill: signal must be KILL, TERM, INT, STOP or CONT, not '$sig'"
    pid=$(node_pid "$port" "$(node_pidfile "$port")")
    [[ -n "$pid" ]] || die "node-kill: no node of ours runs on port $port"
    kill -"$sig" "$pid" || die "node-kill: kill -$sig $pid failed"
    if [[ "$sig" == KILL || "$sig" == TERM || "$sig" == INT ]]; then
        # A frozen node handles TERM only once it runs again.
        [[ "$sig" == KILL ]] || kill -CONT "$pid" 2>/dev/null || true
        deadline=$((SECONDS + ORS_STOP_WAIT))
        while kill -0 "$pid" 2>/dev/null; do
            ((SECONDS < deadline)) || die "node-kill: pid $pid (port $port) still alive ${ORS_STOP_WAIT}s after SIG$sig"
            sleep 0.05
        done
    fi
    say "sent SIG$sig to node $port (pid $pid)"
}

# node-start PORT: starts the node on PORT from what is in its folder (config,
# nodes.conf, AOF): it loads its data and rejoins the cluster by itself.
start_node() {
    local port=$1 dir
    our_port "$port" || die "node-start: $port is not a port of this cluster ($RANGE)"
    dir=$(node_dir "$port")
    [[ -r "$dir/redis.conf" ]] || die "node-start: no node was ever created in $dir (use start)"
    if [[ -n "$(node_pid "$port" "$(node_pidfile "$port")")" ]]; then
        say "node $port is already running"
        return 0
    fi
    port_busy "$port" && die "node-start: port $port is in use by a process this script did not start"
    # 9>&-: the daemon must not inherit (and so hold) our lock.
    if ! "$REDIS_SERVER" "$dir/redis.conf" >/dev/null 9>&-; then
        show_log_tail "$port"
        die "node-start: redis-server on port $port failed to start"
    fi
    # PING answers once the AOF is loaded (until then: -LOADING).
    if ! wait_ping 30 "$port"; then
        show_log_tail "$port"
        die "node-start: node $port did not answer PING within 30s"
    fi
    say "node $port started from its data (pid $(node_pid "$port" "$(node_pidfile "$port")"))"
}

wait_healthy() {
    local limit=${1:-$WAIT_LIMIT} deadline
    [[ "$limit" =~ ^[0-9]+$ ]] || die "wait-healthy: SECONDS must be a number"
    deadline=$((SECONDS + limit))
    until healthy; do
        ((SECONDS < deadline)) || die "cluster on $RANGE not healthy after ${limit}s: $HEALTH_REASON"
        sleep 0.1
    done
    say "cluster on $RANGE is healthy"
}

# resume: every node that is not running starts from its data; then waits
# until the cluster is healthy again.
resume_cluster() {
    need_binaries
    local port started=()
    for port in "${PORTS[@]}"; do
        [[ -r "$(node_dir "$port")/redis.conf" ]] || die "resume: no cluster data in $DATA_ROOT (use start)"
    done
    for port in "${PORTS[@]}"; do
        [[ -n "$(node_pid "$port" "$(node_pidfile "$port")")" ]] && continue
        port_busy "$port" && die "resume: port $port is in use by a process this script did not start"
        if ! "$REDIS_SERVER" "$(node_dir "$port")/redis.conf" >/dev/null 9>&-; then
            show_log_tail "$port"
            die "resume: redis-server on port $port failed to start"
        fi
        started+=("$port")
    done
    if ! wait_ping 30 "${PORTS[@]}"; then
        for port in "${PORTS[@]}"; do pings "$port" || show_log_tail "$port"; done
        die "resume: nodes did not answer PING within 30s"
    fi
    say "resume: started ${#started[@]} node(s) from their data${started[*]:+: ${started[*]}}"
    wait_healthy "$WAIT_LIMIT"
}

status_cluster() {
    local port pid role rc=0
    for port in "${PORTS[@]}"; do
        pid=$(node_pid "$port" "$(node_pidfile "$port")")
        if [[ -z "$pid" ]]; then
            if port_busy "$port"; then
                say "127.0.0.1:$port: in use by a process this script did not start"
            else
                say "127.0.0.1:$port: stopped"
            fi
            rc=1
            continue
        fi
        role=$(cli "$port" info replication | info_field role || true)
        say "127.0.0.1:$port: running, pid $pid, ${role:-no answer}"
    done
    if healthy; then
        say "cluster on $RANGE is healthy (cluster_state:ok, 16384 slots, 3 masters, $((3 * REPLICAS)) replicas)"
    else
        say "cluster on $RANGE is NOT healthy: $HEALTH_REASON"
        rc=1
    fi
    return "$rc"
}

cmd=${1:-}
case "$cmd" in
start)
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    start_cluster
    ;;
stop)
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    stop_nodes
    ;;
restart)
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    stop_nodes
    start_cluster
    ;;
status)
    status_cluster
    ;;
node-kill)
    (($# >= 2)) || die "usage: $0 node-kill PORT [SIGNAL]"
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    kill_node "$2" "${3:-KILL}"
    ;;
node-pid)
    (($# >= 2)) || die "usage: $0 node-pid PORT"
    our_port "$2" || die "node-pid: $2 is not a port of this cluster ($RANGE)"
    pid=$(node_pid "$2" "$(node_pidfile "$2")")
    [[ -n "$pid" ]] || die "node-pid: no node of ours runs on port $2"
    printf '%s\n' "$pid"
    ;;
node-start)
    (($# >= 2)) || die "usage: $0 node-start PORT"
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    start_node "$2"
    ;;
stop-all)
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    stop_nodes
    ;;
resume)
    take_lock "$DATA_ROOT/.cluster-$BASE_PORT.lock"
    resume_cluster
    ;;
wait-healthy)
    wait_healthy "${2:-$WAIT_LIMIT}"
    ;;
*)
    echo "usage: $0 start|stop|status|restart|node-kill PORT [SIGNAL]|node-start PORT|node-pid PORT|stop-all|resume|wait-healthy [SECONDS]" >&2
    exit 2
    ;;
esac
