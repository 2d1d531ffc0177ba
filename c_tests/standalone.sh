#!/usr/bin/env bash
# A plain, non-cluster redis-server on 127.0.0.1, used to check that
# ors_redis_init refuses a standalone server.
#
#   c_tests/standalone.sh start|stop|status|restart
#
# Environment:
#   ORS_STANDALONE_PORT        port (default 7010)
#   ORS_STANDALONE_DIR         data root (default <repo>/target/test-standalone), node in <dir>/<port>
#   ORS_STANDALONE_EXTRA_CONF  file whose lines are appended to the config
#   ORS_REDIS_CLI_ARGS         extra redis-cli arguments for this script
#   REDIS_SERVER, REDIS_CLI    binaries (default redis-server, redis-cli)
#
# The server is stopped by the pid in its pidfile, never by name.
set -euo pipefail

PROG=standalone.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=c_tests/redis-lib.sh
. "$HERE/redis-lib.sh"

PORT=${ORS_STANDALONE_PORT:-7010}
DATA_ROOT=${ORS_STANDALONE_DIR:-$REPO/target/test-standalone}
EXTRA_CONF=${ORS_STANDALONE_EXTRA_CONF:-}

if ! [[ "$PORT" =~ ^[0-9]+$ ]] || ((PORT < 1024 || PORT >= 32768)); then
    die "ORS_STANDALONE_PORT must be a port number in 1024..32767, not '$PORT'"
fi
mkdir -p "$DATA_ROOT"
DATA_ROOT=$(cd "$DATA_ROOT" && pwd)
DIR="$DATA_ROOT/$PORT"
PIDFILE="$DIR/redis.pid"

start_server() {
    need_binaries
    local pid
    pid=$(node_pid "$PORT" "$PIDFILE")
    if [[ -n "$pid" ]] && pings "$PORT"; then
        say "standalone redis already running on 127.0.0.1:$PORT (pid $pid)"
        return 0
    fi
    stop_server >/dev/null
    port_busy "$PORT" && die "port $PORT is in use by a process this script did not start"
    rm -rf "$DIR"
    mkdir -p "$DIR"
    {
        printf '%s\n' \
            "# written by c_tests/standalone.sh" \
            "port $PORT" \
            "bind 127.0.0.1" \
            "daemonize yes" \
            "dir $DIR" \
            "pidfile $PIDFILE" \
            "logfile $DIR/redis.log" \
            "save \"\"" \
            "appendonly no"
        common_conf_lines
        append_extra_conf "$EXTRA_CONF"
    } >"$DIR/redis.conf"
    # 9>&-: the daemon must not inherit (and so hold) our lock.
    if ! "$REDIS_SERVER" "$DIR/redis.conf" >/dev/null 9>&- || ! wait_ping 15 "$PORT"; then
        [[ -r "$DIR/redis.log" ]] && tail -n 20 "$DIR/redis.log" >&2
        stop_server >/dev/null
        die "standalone redis-server on port $PORT did not start"
    fi
    say "standalone redis up on 127.0.0.1:$PORT (pid $(node_pid "$PORT" "$PIDFILE")), data in $DIR"
}

stop_server() {
    local pid
    pid=$(node_pid "$PORT" "$PIDFILE")
    if [[ -z "$pid" ]]; then
        say "no standalone redis running on 127.0.0.1:$PORT"
        return 0
    fi
    stop_pids "$pid"
    rm -f "$PIDFILE"
    say "stopped standalone redis on 127.0.0.1:$PORT (pid $pid)"
}

status_server() {
    local pid
    pid=$(node_pid "$PORT" "$PIDFILE")
    if [[ -n "$pid" ]] && pings "$PORT"; then
        say "standalone redis on 127.0.0.1:$PORT: running, pid $pid"
        return 0
    fi
    if port_busy "$PORT"; then
        say "127.0.0.1:$PORT: in use by a process this script did not start"
    else
        say "standalone redis on 127.0.0.1:$PORT: stopped"
    fi
    return 1
}

case "${1:-}" in
start)
    take_lock "$DATA_ROOT/.standalone-$PORT.lock"
    start_server
    ;;
stop)
    take_lock "$DATA_ROOT/.standalone-$PORT.lock"
    stop_server
    ;;
restart)
    take_lock "$DATA_ROOT/.standalone-$PORT.lock"
    stop_server
    start_server
    ;;
status)
    status_server
    ;;
*)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
