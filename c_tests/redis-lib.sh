# shellcheck shell=bash
# Helpers shared by cluster.sh and standalone.sh: talk to a local redis-server
# and stop one by its pidfile, never by name. Sourced, not run.

REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_CLI=${REDIS_CLI:-redis-cli}
# Extra redis-cli arguments, e.g. "--user admin --pass secret --no-auth-warning"
# when ORS_CLUSTER_EXTRA_CONF turns on ACLs (REDISCLI_AUTH works too).
read -r -a ORS_CLI_ARGS <<<"${ORS_REDIS_CLI_ARGS:-}"
ORS_STOP_WAIT=${ORS_STOP_WAIT:-15}

say() { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

need_binaries() {
    local b
    for b in "$REDIS_SERVER" "$REDIS_CLI"; do
        command -v "$b" >/dev/null 2>&1 ||
            die "'$b' not found (install redis-server and redis-tools, or set REDIS_SERVER / REDIS_CLI)"
    done
}

# The version of $REDIS_SERVER (Redis or Valkey) as MAJOR*100+MINOR, e.g.
# 302 for 3.2.6; 0 when it cannot be read.
server_version_num() {
    local v major minor
    v=$("$REDIS_SERVER" --version 2>/dev/null | sed -n 's/.* v=\([0-9]*\.[0-9]*\).*/\1/p')
    major=${v%%.*}
    minor=${v#*.}
    [[ "$major" =~ ^[0-9]+$ && "$minor" =~ ^[0-9]+$ ]] || {
        printf '0\n'
        return 0
    }
    printf '%s\n' $((major * 100 + minor))
}

# Config lines every test server gets that not every version knows:
# protected-mode exists from Redis 3.2 on (3.0 refuses to start on it).
common_conf_lines() {
    local num
    num=$(server_version_num)
    if ((num == 0 || num >= 302)); then printf '%s\n' "protected-mode no"; fi
}

# cli PORT ARGS... : one redis-cli call that cannot hang the script.
cli() {
    local port=$1
    shift
    timeout 5 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "${ORS_CLI_ARGS[@]}" "$@" 2>/dev/null
}

pings() { [[ "$(cli "$1" ping)" == PONG ]]; }

# Is something listening on 127.0.0.1:PORT (whatever it is)?
port_busy() {
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Reads a "field:value" line from redis INFO-style text on stdin.
info_field() {
    local want=$1 line
    while IFS= read -r line; do
        line=${line%$'\r'}
        if [[ "$line" == "$want:"* ]]; then
            printf '%s\n' "${line#*:}"
            return 0
        fi
    done
    return 1
}

# Is PID a live redis-server serving PORT? Guards against pid reuse after a
# stale pidfile (redis sets its process title to "... 127.0.0.1:PORT ...").
is_our_redis() {
    local pid=$1 port=$2 cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
        [[ "$cmdline" == *":$port"* ]] || return 1
    fi
    return 0
}

pid_from_file() {
    local pidfile=$1 pid=""
    [[ -s "$pidfile" ]] && read -r pid <"$pidfile" 2>/dev/null
    [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s\n' "$pid"
    return 0
}

# The pid of the node we started on PORT (pidfile PIDFILE), or nothing.
# Falls back to asking the server itself when the pidfile is gone but the
# server reports our pidfile path (a daemon that lost its pidfile).
node_pid() {
    local port=$1 pidfile=$2 pid
    pid=$(pid_from_file "$pidfile")
    if [[ -n "$pid" ]] && is_our_redis "$pid" "$port"; then
        printf '%s\n' "$pid"
        return 0
    fi
    if pings "$port"; then
        local theirs
        theirs=$(cli "$port" config get pidfile | sed -n 2p) || true
        if [[ "$theirs" == "$pidfile" ]]; then
            pid=$(cli "$port" info server | info_field process_id || true)
            if [[ -n "$pid" ]] && is_our_redis "$pid" "$port"; then
                printf '%s\n' "$pid"
                return 0
            fi
        fi
    fi
    return 0
}

# stop_pids PID... : SIGTERM, wait up to ORS_STOP_WAIT seconds, then SIGKILL.
stop_pids() {
    local pid alive deadline
    (($# > 0)) || return 0
    kill -TERM "$@" 2>/dev/null || true
    # A node frozen with SIGSTOP (chaos tests) acts on TERM only once thawed.
    kill -CONT "$@" 2>/dev/null || true
    deadline=$((SECONDS + ORS_STOP_WAIT))
    while :; do
        alive=()
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        ((${#alive[@]} == 0)) && return 0
        ((SECONDS >= deadline)) && break
        sleep 0.1
    done
    warn "pid(s) ${alive[*]} still alive after ${ORS_STOP_WAIT}s, sending SIGKILL"
    kill -KILL "${alive[@]}" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while ((SECONDS < deadline)); do
        alive=()
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        ((${#alive[@]} == 0)) && return 0
        sleep 0.1
    done
    die "could not stop pid(s) ${alive[*]}"
}

# wait_ping SECONDS PORT... : until every port answers PING.
wait_ping() {
    local limit=$1 port deadline
    shift
    deadline=$((SECONDS + limit))
    for port in "$@"; do
        until pings "$port"; do
            ((SECONDS < deadline)) || return 1
            sleep 0.1
        done
    done
}

# Serialises start/stop of the same set of ports (ctest -j, two terminals).
take_lock() {
    local lockfile=$1
    mkdir -p "$(dirname "$lockfile")"
    exec 9>"$lockfile"
    if command -v flock >/dev/null 2>&1; then
        flock -w 120 9 || die "could not lock $lockfile within 120s"
    fi
}

append_extra_conf() {
    local extra=$1
    [[ -n "$extra" ]] || return 0
    [[ -r "$extra" ]] || die "extra config file '$extra' is not readable"
    printf '\n# from %s\n' "$extra"
    cat "$extra"
    printf '\n'
}
