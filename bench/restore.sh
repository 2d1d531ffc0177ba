#!/usr/bin/env bash
# restore.sh - the library's bulk read (ors_session_restore) against a
# hand-written hiredis reader, on one cluster, one data set, in one run
# (issue 21). bench/README.md ("Restore") says what each figure means.
#
#   bench/restore.sh [options] [SESSIONS [VALUE_SIZE]]    default 200000 2048
#   bench/restore.sh --smoke [--reuse PORT --bench BIN --peer BIN]
#
# A run: start a cluster (c_tests/cluster.sh: 3 masters + 3 replicas, AOF
# on), load the data set (bench/restore_data.h) and wait until replicas
# and AOF rewrites are idle; then, alternating and swapping the order each
# time, the peer (bench/restore_peer.c read: one thread per master, SCAN +
# pipelined GETs) and the library's restore (bench/restore_bench.c restore);
# the old way once each, scan + get at 1 and 8 threads; and ids only,
# alternating, the peer's SCAN and ors_session_scan (and --old-lib-dir's).
# Every program checks every session it is handed; a failed check fails the
# run. Medians go into a section of the report (bench/restore-results.md),
# one section per SESSIONS x VALUE_SIZE, replaced when rerun, with the raw
# RESULT lines beneath it; the summary prints each figure as a ratio to the
# peer measured in the same run. The cluster is stopped on any exit.
#
# --smoke: 5,000 sessions x 512 bytes loaded by the library's puts, one
# alternation, and checks (each reader hands over every session once, with
# its value; they agree on the count; a prefix and an early stop give what
# they should; a wrong value is caught), printed as c_tests/checks.sh does
# (ok/FAIL lines, then "N passed, M failed"); figures are printed, never judged. Writes no
# report unless --out is given. Exit 0 when every check passed.
#
# Options:
#   --smoke              the smoke run above
#   --alternations K     peer/restore pairs (3; --smoke: 1)
#   --no-replicas        3 masters without replicas (the memory run, 1M x 4 KiB)
#   --port P             first port of the cluster started here (7140; uses 6, or 3)
#   --dir DIR            its data (target/bench-restore-cluster)
#   --reuse PORT         use a running cluster on 127.0.0.1:PORT.. (never
#                        started or stopped here); the data set goes under a
#                        cluster name of its own and is expired at the end
#   --lib-dir DIR        libors_redis.so to measure (target/release, built
#                        with cargo if missing; not with --bench)
#   --old-lib-dir DIR    another libors_redis.so (e.g. before the restore
#                        engine): its ors_session_scan is timed too
#   --bench BIN, --peer BIN   programs built already (ctest); otherwise both
#                        are compiled with cc into target/bench-restore-bin
#   --load peer|library  who loads the data set (peer: pipelined SETs, fast;
#                        library: 8 threads of puts; --smoke: library)
#   --out FILE           report (bench/restore-results.md; --smoke: none)
#   --timeout S          limit of each program run (900)
#
# Exit status: 0 when every run passed its checks, 1 otherwise, 2 for bad
# usage, 77 (skip) in --smoke without a peer program (no hiredis).
# Needs: redis-server, redis-tools, cc, libhiredis-dev (pkg-config hiredis).
set -euo pipefail

PROG=restore.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CLI=${REDIS_CLI:-redis-cli}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}
help_text() { sed -n '/^#   bench\/restore.sh/,/^# Needs/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
usage() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    help_text >&2
    exit 2
}
say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

SMOKE=0
ALTERNATIONS=""
REPLICAS=1
PORT=${ORS_RESTORE_PORT:-7140}
DATA_DIR="$REPO/target/bench-restore-cluster"
REUSE=""
LIB_DIR=""
OLD_LIB_DIR=""
BENCH=""
PEER=""
LOAD=""
OUT=""
OUT_GIVEN=0
RUN_TIMEOUT=900
POSITIONAL=()
while (($#)); do
    case "$1" in
    --smoke) SMOKE=1 ;;
    --alternations) ALTERNATIONS=${2:?}; shift ;;
    --no-replicas) REPLICAS=0 ;;
    --port) PORT=${2:?}; shift ;;
    --dir) DATA_DIR=${2:?}; shift ;;
    --reuse) REUSE=${2:?}; shift ;;
    --lib-dir) LIB_DIR=${2:?}; shift ;;
    --old-lib-dir) OLD_LIB_DIR=${2:?}; shift ;;
    --bench) BENCH=${2?}; shift ;;
    --peer) PEER=${2?}; shift ;;
    --load) LOAD=${2:?}; shift ;;
    --out) OUT=${2:?}; OUT_GIVEN=1; shift ;;
    --timeout) RUN_TIMEOUT=${2:?}; shift ;;
    -h | --help)
        help_text
        exit 0
        ;;
    -*) usage "unknown option $1" ;;
    *) POSITIONAL+=("$1") ;;
    esac
    shift
done
if ((SMOKE)); then
    SESSIONS=${POSITIONAL[0]:-5000}
    VALUE_SIZE=${POSITIONAL[1]:-512}
    ALTERNATIONS=${ALTERNATIONS:-1}
    LOAD=${LOAD:-library}
else
    SESSIONS=${POSITIONAL[0]:-200000}
    VALUE_SIZE=${POSITIONAL[1]:-2048}
    ALTERNATIONS=${ALTERNATIONS:-3}
    LOAD=${LOAD:-peer}
    ((OUT_GIVEN)) || OUT="$HERE/restore-results.md"
fi
for n in "$SESSIONS" "$VALUE_SIZE" "$ALTERNATIONS" "$PORT" "$RUN_TIMEOUT" ${REUSE:+"$REUSE"}; do
    [[ "$n" =~ ^[0-9]+$ ]] || usage "'$n' is not a number"
done
((SESSIONS > 0 && ALTERNATIONS > 0)) || usage "SESSIONS and --alternations must be above 0"
[[ "$LOAD" == peer || "$LOAD" == library ]] || usage "--load is peer or library, not '$LOAD'"

# ---------------------------------------------------------------------------
# Programs

BIN_DIR="$REPO/target/bench-restore-bin"
CFLAGS=(-O2 -std=c99 -Wall -Wextra -Wpedantic -Werror)

# A --bench built elsewhere (ctest) brings its library along.
if [[ -z "$BENCH" ]]; then
    LIB_DIR=${LIB_DIR:-$REPO/target/release}
    if [[ ! -e "$LIB_DIR/libors_redis.so" ]]; then
        [[ "$LIB_DIR" == "$REPO/target/release" ]] || die "$LIB_DIR/libors_redis.so not found"
        say "libors_redis.so not built yet: cargo build --release --lib"
        (cd "$REPO" && cargo build --release --lib)
    fi
    LIB_DIR=$(cd "$LIB_DIR" && pwd)
    # The programs load the library by its SONAME; cargo makes only the .so.
    [[ -e "$LIB_DIR/libors_redis.so.0" ]] || ln -s libors_redis.so "$LIB_DIR/libors_redis.so.0"
fi
if [[ -n "$OLD_LIB_DIR" ]]; then
    OLD_LIB_DIR=$(cd "$OLD_LIB_DIR" && pwd)
    [[ -e "$OLD_LIB_DIR/libors_redis.so" ]] || die "$OLD_LIB_DIR/libors_redis.so not found"
    [[ -e "$OLD_LIB_DIR/libors_redis.so.0" ]] || ln -s libors_redis.so "$OLD_LIB_DIR/libors_redis.so.0"
fi
if [[ -z "$BENCH" ]]; then
    mkdir -p "$BIN_DIR"
    BENCH="$BIN_DIR/restore_bench"
    cc "${CFLAGS[@]}" -I"$REPO/include" "$HERE/restore_bench.c" -o "$BENCH" \
        -L"$LIB_DIR" -lors_redis -lpthread -ldl -Wl,-rpath,"$LIB_DIR"
fi
if [[ -z "$PEER" ]]; then
    if pkg-config --exists hiredis 2>/dev/null; then
        mkdir -p "$BIN_DIR"
        PEER="$BIN_DIR/restore_peer"
        # shellcheck disable=SC2046 # pkg-config's flags are split on purpose
        cc "${CFLAGS[@]}" $(pkg-config --cflags hiredis) "$HERE/restore_peer.c" -o "$PEER" \
            $(pkg-config --libs hiredis) -lpthread
    elif ((SMOKE)); then
        echo "skipped: hiredis not found (Debian package libhiredis-dev)"
        exit 77
    else
        die "hiredis not found: install libhiredis-dev (and pkg-config)"
    fi
fi
[[ -x "$BENCH" && -x "$PEER" ]] || die "no program $BENCH or $PEER"

# Has the library's header the restore? Then a library without it is a failure.
RESTORE_DECLARED=0
grep -q 'ors_session_restore(' "$REPO/include/ors_redis.h" && RESTORE_DECLARED=1

# ---------------------------------------------------------------------------
# Cluster

STARTED=0
LOADED=0
CLEANED=0
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ors-restore.XXXXXX")
cluster_env() {
    env ORS_CLUSTER_PORT="$PORT" ORS_CLUSTER_DIR="$DATA_DIR" ORS_CLUSTER_REPLICAS="$REPLICAS" "$@"
}
cleanup() {
    local rc=$?
    if [[ -n "$REUSE" ]] && ((LOADED && !CLEANED)); then
        timeout 300 "$PEER" clean --port "$PORT" --cluster "$NAME" --quiet >/dev/null 2>&1 || rc=1
    fi
    if ((STARTED)); then
        cluster_env "$REPO/c_tests/cluster.sh" stop >/dev/null || rc=1
    fi
    rm -rf "$LOG_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -n "$REUSE" ]]; then
    PORT=$REUSE
    NAME="restore-${SESSIONS}x${VALUE_SIZE}-$$"
    TTL=600 # what a run cut short leaves behind does not stay long
    CLUSTER_DESC="a running cluster on 127.0.0.1:$PORT (reused)"
else
    say "starting the cluster on 127.0.0.1:$PORT ($((3 + 3 * REPLICAS)) nodes, data in $DATA_DIR)"
    STARTED=1
    # A fresh cluster: no data of an earlier run.
    cluster_env "$REPO/c_tests/cluster.sh" stop >/dev/null
    rm -rf "$DATA_DIR"
    cluster_env "$REPO/c_tests/cluster.sh" start >/dev/null
    NAME="restore-${SESSIONS}x${VALUE_SIZE}"
    TTL=86400
    CLUSTER_DESC="3 masters + $((3 * REPLICAS)) replicas on 127.0.0.1 (c_tests/cluster.sh, appendonly yes, appendfsync everysec)"
fi
SEEDS="127.0.0.1:$PORT;127.0.0.1:$((PORT + 1));127.0.0.1:$((PORT + 2))"
CONFIG="redis-nodes=$SEEDS cluster-name=$NAME"
PEER_ARGS=(--port "$PORT" --cluster "$NAME" --sessions "$SESSIONS" --value-size "$VALUE_SIZE")
BENCH_ARGS=(--config "$CONFIG" --sessions "$SESSIONS" --value-size "$VALUE_SIZE")

# Waits until no node rewrites its AOF or saves, and every replica has its
# master's whole stream, so that a measured read does not share the cores
# with the load's aftermath (bounded: 10 minutes, then measure anyway).
settle() {
    local deadline=$((SECONDS + 600)) port busy info offset
    while :; do
        busy=""
        for ((port = PORT; port < PORT + 3 + 3 * REPLICAS; port++)); do
            info=$("$CLI" -p "$port" info persistence | tr -d '\r')
            if grep -Eq '^(aof_rewrite_in_progress|aof_rewrite_scheduled|rdb_bgsave_in_progress):1' <<<"$info"; then
                busy="$port is writing its AOF or RDB"
                break
            fi
            info=$("$CLI" -p "$port" info replication | tr -d '\r')
            offset=$(sed -n 's/^master_repl_offset://p' <<<"$info")
            if grep -q '^role:master' <<<"$info" &&
                grep '^slave[0-9]*:' <<<"$info" | grep -vq "offset=$offset,"; then
                busy="a replica of $port is behind"
                break
            fi
        done
        [[ -z "$busy" ]] && return 0
        if ((SECONDS >= deadline)); then
            say "warning: still not settled after 10 minutes ($busy): measuring anyway"
            return 0
        fi
        sleep 1
    done
}

# ---------------------------------------------------------------------------
# Runs

FAILED_RUNS=()
ALL_LINES=()
LINE=""
RC=0
# run LABEL PROGRAM ARGS...: runs it (bounded), keeps its RESULT line in
# LINE and its exit status in RC; a non-zero status is a failed run (restore
# missing from the library, 3, only when the header has no restore).
run() {
    local label=$1 out="$LOG_DIR/run.out" err="$LOG_DIR/run.err"
    shift
    set +e
    timeout "$RUN_TIMEOUT" "$@" --quiet >"$out" 2>"$err"
    RC=$?
    set -e
    LINE=$(grep '^RESULT ' "$out" | tail -n 1 || true)
    if ((RC != 0)) && ! ((RC == 3 && !RESTORE_DECLARED)); then
        FAILED_RUNS+=("$label (exit $RC)")
        say "FAILED: $label exited $RC: $(head -c 600 "$err")"
    fi
    if [[ -n "$LINE" ]]; then
        ALL_LINES+=("$label: $LINE")
    elif ((RC == 3)); then
        ALL_LINES+=("$label: not in this library ($(head -c 200 "$err"))")
    fi
}

field() { # field NAME LINE: the value of NAME=... in a RESULT line ("" if none)
    local kv
    for kv in $2; do
        if [[ $kv == "$1="* ]]; then
            printf '%s\n' "${kv#*=}"
            return 0
        fi
    done
    printf '\n'
}

median() { # median VALUE...: of the numeric values ("" if none)
    printf '%s\n' "$@" | awk '/^[0-9.]+$/' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { # ratio A B: A / B to 2 decimals ("" if either is missing)
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.2f\n", a / b }'
}
rate() { # rate R: 123,456 ("-" if none)
    awk -v r="$1" 'BEGIN {
        if (r == "") { print "-"; exit }
        s = sprintf("%.0f", r); g = ""
        while (length(s) > 3) { g = "," substr(s, length(s) - 2) g; s = substr(s, 1, length(s) - 3) }
        print s g }'
}
mib() { awk -v k="$1" 'BEGIN { if (k == "" || k < 0) print "-"; else printf "%.1f\n", k / 1024 }'; }
dash() { printf '%s\n' "${1:--}"; } # an empty figure shows as "-"
dec2() { awk -v v="$1" 'BEGIN { if (v == "") print "-"; else printf "%.2f\n", v }'; }
us_per() { # us_per CPU_S SESSIONS: client CPU per session in µs
    awk -v c="$1" -v n="$2" 'BEGIN { if (c == "" || n == "" || n + 0 == 0) print "-"; else printf "%.2f\n", c * 1e6 / n }'
}

peer_read() { run "$1" "$PEER" read "${PEER_ARGS[@]}"; }
lib_restore() { run "$1" "$BENCH" restore "${BENCH_ARGS[@]}"; }

say "data set: $SESSIONS sessions x $VALUE_SIZE bytes under cluster name $NAME, loaded by the $LOAD"
LOAD_T0=$SECONDS
LOADED=1
if [[ "$LOAD" == peer ]]; then
    run "load" "$PEER" load "${PEER_ARGS[@]}" --ttl "$TTL"
else
    run "load" "$BENCH" load "${BENCH_ARGS[@]}" --threads 8 --ttl "$TTL"
fi
((RC == 0)) || die "the load failed (exit $RC): $(cat "$LOG_DIR/run.err")"
LOAD_LINE=$LINE
if [[ -z "$REUSE" ]]; then
    settle
fi
say "loaded in $((SECONDS - LOAD_T0)) s (settled); reading"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)

PEER_RATES=() LIB_RATES=() LIB_GROWTH=() PEER_CPU=() LIB_CPU=() ROWS=()
PEER_LINES=() LIB_LINES=()
for ((i = 1; i <= ALTERNATIONS; i++)); do
    if ((i % 2)); then
        peer_read "peer read $i"
        p_line=$LINE
        lib_restore "restore $i"
        l_line=$LINE
        order="peer first"
    else
        lib_restore "restore $i"
        l_line=$LINE
        peer_read "peer read $i"
        p_line=$LINE
        order="restore first"
    fi
    PEER_LINES+=("$p_line")
    LIB_LINES+=("$l_line")
    p=$(field sessions_per_sec "$p_line")
    l=$(field sessions_per_sec "$l_line")
    g=$(field rss_growth_kib "$l_line")
    PEER_RATES+=("$p")
    LIB_RATES+=("$l")
    LIB_GROWTH+=("$g")
    PEER_CPU+=("$(us_per "$(field cpu_s "$p_line")" "$(field reported "$p_line")")")
    LIB_CPU+=("$(us_per "$(field cpu_s "$l_line")" "$(field reported "$l_line")")")
    ROWS+=("| $i ($order) | $(rate "$p") | $(rate "$l") | $(dash "$(ratio "$l" "$p")") | ${PEER_CPU[-1]} | ${LIB_CPU[-1]} | $(mib "$g") |")
    say "alternation $i: peer $(rate "$p")/s, restore $(rate "$l")/s (restore/peer $(dash "$(ratio "$l" "$p")"))"
done
PEER_MED=$(median "${PEER_RATES[@]}")
LIB_MED=$(median "${LIB_RATES[@]}")
GROWTH_MAX=$(printf '%s\n' "${LIB_GROWTH[@]}" | awk '/^[0-9]+$/' | sort -n | tail -n 1)

run "scan+get 1 thread" "$BENCH" scan-get "${BENCH_ARGS[@]}" --threads 1
SG1_LINE=$LINE
run "scan+get 8 threads" "$BENCH" scan-get "${BENCH_ARGS[@]}" --threads 8
SG8_LINE=$LINE

PSCAN_RATES=() LSCAN_RATES=() OSCAN_RATES=()
PSCAN_LINE="" LSCAN_LINE="" OSCAN_LINE=""
for ((i = 1; i <= ALTERNATIONS; i++)); do
    run "peer scan $i" "$PEER" scan "${PEER_ARGS[@]}"
    PSCAN_LINE=$LINE
    PSCAN_RATES+=("$(field sessions_per_sec "$LINE")")
    run "scan $i" "$BENCH" scan "${BENCH_ARGS[@]}"
    LSCAN_LINE=$LINE
    LSCAN_RATES+=("$(field sessions_per_sec "$LINE")")
    if [[ -n "$OLD_LIB_DIR" ]]; then
        run "old library scan $i" env LD_LIBRARY_PATH="$OLD_LIB_DIR" "$BENCH" scan "${BENCH_ARGS[@]}"
        OSCAN_LINE=$LINE
        OSCAN_RATES+=("$(field sessions_per_sec "$LINE")")
    fi
done
PSCAN_MED=$(median "${PSCAN_RATES[@]}")
LSCAN_MED=$(median "${LSCAN_RATES[@]}")
OSCAN_MED=$(median "${OSCAN_RATES[@]:-}")
LOADAVG_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------
# Smoke checks

# shellcheck source=c_tests/checks.sh
. "$REPO/c_tests/checks.sh"
is() { [[ "$1" == "$2" ]]; }

if ((SMOKE)); then
    N=$SESSIONS
    check "load: $N sessions put by the library" is "$(field loaded "$LOAD_LINE")" "$N"
    for j in "${!PEER_LINES[@]}"; do
        check "peer read: every session once, right values ($(field distinct "${PEER_LINES[j]}") distinct, $(field bad_values "${PEER_LINES[j]}") bad)" \
            is "$(field distinct "${PEER_LINES[j]}")/$(field bad_values "${PEER_LINES[j]}")/$(field foreign "${PEER_LINES[j]}")" "$N/0/0"
    done
    if [[ -n "$(field reported "${LIB_LINES[0]}")" ]]; then
        for j in "${!LIB_LINES[@]}"; do
            l_line=${LIB_LINES[j]}
            check "restore: ORS_OK, $N sessions each once with its value (reported $(field reported "$l_line"), repeats $(field repeats "$l_line"), bad $(field bad_values "$l_line"))" \
                is "$(field status "$l_line")/$(field reported "$l_line")/$(field distinct "$l_line")/$(field repeats "$l_line")/$(field bad_values "$l_line")/$(field foreign "$l_line")" "ORS_OK/$N/$N/0/0/0"
            check "restore and peer agree on the count" is "$(field reported "$l_line")" "$(field distinct "${PEER_LINES[j]}")"
        done
        run "restore --prefix bench-1" "$BENCH" restore "${BENCH_ARGS[@]}" --prefix bench-1
        check "restore --prefix bench-1: the $(field expected "$LINE") ids under it, each once (got $(field reported "$LINE"))" \
            is "$RC/$(field reported "$LINE")" "0/$(field expected "$LINE")"
        run "restore --stop-after 10" "$BENCH" restore "${BENCH_ARGS[@]}" --stop-after 10
        check "restore: a callback returning non-zero stops it (10 handed over, ORS_OK)" \
            is "$RC/$(field reported "$LINE")/$(field status "$LINE")" "0/10/ORS_OK"
    elif ((RESTORE_DECLARED)); then
        check "restore: include/ors_redis.h declares ors_session_restore, the library has it" false
    else
        echo "# skip: restore checks, not in this library yet (include/ors_redis.h has no ors_session_restore)"
    fi
    for sg in "$SG1_LINE" "$SG8_LINE"; do
        check "scan+get $(field threads "$sg") thread(s): every session once with its value" \
            is "$(field status "$sg")/$(field reported "$sg")/$(field distinct "$sg")/$(field bad_values "$sg")/$(field errors "$sg")" "ORS_OK/$N/$N/0/0"
    done
    check "scan: every id once (reported $(field reported "$LSCAN_LINE"))" \
        is "$(field status "$LSCAN_LINE")/$(field reported "$LSCAN_LINE")/$(field distinct "$LSCAN_LINE")" "ORS_OK/$N/$N"
    check "peer scan: every id ($(field distinct "$PSCAN_LINE") distinct)" is "$(field distinct "$PSCAN_LINE")" "$N"
    run "scan --prefix bench-2" "$BENCH" scan "${BENCH_ARGS[@]}" --prefix bench-2
    check "scan --prefix bench-2: the $(field expected "$LINE") ids under it" is "$RC/$(field reported "$LINE")" "0/$(field expected "$LINE")"
    # The checkers catch what they should: values of another size.
    set +e
    out=$(timeout "$RUN_TIMEOUT" "$PEER" read --port "$PORT" --cluster "$NAME" --sessions "$N" \
        --value-size $((VALUE_SIZE + 1)) --quiet 2>/dev/null)
    rc=$?
    set -e
    check "peer read: wrong values are caught (exit $rc, bad $(field bad_values "$out"))" is "$rc/$(field bad_values "$out")" "1/$N"
    set +e
    out=$(timeout "$RUN_TIMEOUT" "$BENCH" scan-get --config "$CONFIG" --sessions "$N" \
        --value-size $((VALUE_SIZE + 1)) --threads 2 --quiet 2>/dev/null)
    rc=$?
    set -e
    check "scan+get: wrong values are caught (exit $rc, bad $(field bad_values "$out"))" is "$rc/$(field bad_values "$out")" "1/$N"
fi

# A reused cluster keeps no data of ours.
if [[ -n "$REUSE" ]]; then
    set +e
    out=$(timeout "$RUN_TIMEOUT" "$PEER" clean --port "$PORT" --cluster "$NAME" --quiet 2>&1)
    left=$(timeout "$RUN_TIMEOUT" "$PEER" scan --port "$PORT" --cluster "$NAME" --sessions 0 --quiet 2>/dev/null)
    set -e
    CLEANED=1
    if ((SMOKE)); then
        check "clean: the $SESSIONS sessions expired (expired $(field expired "$out")), none left ($(field reported "$left"))" \
            is "$(field expired "$out")/$(field reported "$left")" "$SESSIONS/0"
    fi
fi

# ---------------------------------------------------------------------------
# Summary and report

sg1=$(field sessions_per_sec "$SG1_LINE")
sg8=$(field sessions_per_sec "$SG8_LINE")
echo
say "$SESSIONS sessions x $VALUE_SIZE bytes, $ALTERNATIONS alternation(s), medians (ratio to the peer of this run):"
printf '  peer (hiredis, SCAN + pipelined GET)   %12s sessions/s\n' "$(rate "$PEER_MED")"
if [[ -n "$LIB_MED" ]]; then
    printf '  ors_session_restore                     %12s sessions/s  %s x peer, RSS growth max %s MiB\n' \
        "$(rate "$LIB_MED")" "$(ratio "$LIB_MED" "$PEER_MED")" "$(mib "$GROWTH_MAX")"
else
    printf '  ors_session_restore                     not in this library\n'
fi
printf '  scan + get, 1 thread                    %12s sessions/s  %s x peer\n' "$(rate "$sg1")" "$(ratio "$sg1" "$PEER_MED")"
printf '  scan + get, 8 threads                   %12s sessions/s  %s x peer\n' "$(rate "$sg8")" "$(ratio "$sg8" "$PEER_MED")"
printf '  ids only: peer SCAN                     %12s ids/s\n' "$(rate "$PSCAN_MED")"
printf '  ids only: ors_session_scan              %12s ids/s       %s x peer SCAN\n' "$(rate "$LSCAN_MED")" "$(ratio "$LSCAN_MED" "$PSCAN_MED")"
if [[ -n "$OSCAN_MED" ]]; then
    printf '  ids only: ors_session_scan, old library %12s ids/s       new/old %s\n' "$(rate "$OSCAN_MED")" "$(ratio "$LSCAN_MED" "$OSCAN_MED")"
fi

verdict() { # verdict RATIO MIN: met or MISSED
    awk -v r="$1" -v m="$2" 'BEGIN { if (r == "") print "not measured"; else if (r + 0 >= m + 0) print "met"; else print "MISSED" }'
}

write_report() {
    local key="${SESSIONS}x${VALUE_SIZE}" section tmp head lib_line library
    ((REPLICAS)) || key="${key}-no-replicas"
    lib_line=${LIB_LINES[0]:-}
    [[ -n "$lib_line" ]] || lib_line=$LSCAN_LINE
    library=$(field lib "$lib_line")
    library=${library#"$REPO"/}
    head=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
    git -C "$REPO" diff --quiet HEAD 2>/dev/null || head="$head (with uncommitted changes)"
    section=$(
        printf '<!-- restore-run %s -->\n' "$key"
        printf '## %s sessions × %s bytes%s\n\n' "$(rate "$SESSIONS")" "$VALUE_SIZE" "$( ((REPLICAS)) || echo ', masters without replicas')"
        printf 'Measured %s by `bench/restore.sh %s %s%s`: library %s, repository HEAD %s; %s; %s; hiredis %s; %s cores; load average %s at the start, %s at the end. Data set loaded by the %s (%s s). Client CPU is per session handed over (user + system, all threads).\n\n' \
            "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SESSIONS" "$VALUE_SIZE" "$( ((REPLICAS)) || echo ' --no-replicas')" \
            "${library:-?}" "$head" "$CLUSTER_DESC" "$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/Redis \1/p')" \
            "$(pkg-config --modversion hiredis 2>/dev/null || echo ?)" "$(nproc)" "$LOADAVG_START" "$LOADAVG_END" \
            "$LOAD" "$(printf '%.1f' "$(field seconds "$LOAD_LINE")")"
        printf '| alternation | peer: SCAN + pipelined GET, sessions/s | ors_session_restore, sessions/s | restore / peer | peer CPU µs/session | restore CPU µs/session | restore RSS growth, MiB |\n'
        printf '|---|---:|---:|---:|---:|---:|---:|\n'
        printf '%s\n' "${ROWS[@]}"
        printf '| **median** | **%s** | **%s** | **%s** | %s | %s | max %s |\n\n' "$(rate "$PEER_MED")" "$(rate "$LIB_MED")" \
            "$(dash "$(ratio "$LIB_MED" "$PEER_MED")")" "$(dec2 "$(median "${PEER_CPU[@]}")")" \
            "$(dec2 "$(median "${LIB_CPU[@]}")")" "$(mib "$GROWTH_MAX")"
        printf '| the old way (once) | sessions/s | / peer median |\n|---|---:|---:|\n'
        printf '| scan + get, 1 thread | %s | %s |\n' "$(rate "$sg1")" "$(ratio "$sg1" "$PEER_MED")"
        printf '| scan + get, 8 threads | %s | %s |\n\n' "$(rate "$sg8")" "$(ratio "$sg8" "$PEER_MED")"
        printf '| ids only (median of %s) | ids/s | / peer SCAN |\n|---|---:|---:|\n' "$ALTERNATIONS"
        printf '| peer: SCAN | %s | 1.00 |\n' "$(rate "$PSCAN_MED")"
        printf '| ors_session_scan | %s | %s |\n' "$(rate "$LSCAN_MED")" "$(ratio "$LSCAN_MED" "$PSCAN_MED")"
        if [[ -n "$OSCAN_MED" ]]; then
            printf '| ors_session_scan of %s | %s | %s |\n' "$(field lib "$OSCAN_LINE")" "$(rate "$OSCAN_MED")" "$(ratio "$OSCAN_MED" "$PSCAN_MED")"
        fi
        printf '\nTargets:\n\n'
        printf -- '- restore ≥ peer, median of %s: **%s**%s\n' "$ALTERNATIONS" "$(verdict "$(ratio "$LIB_MED" "$PEER_MED")" 1)" \
            "${LIB_MED:+ ($(ratio "$LIB_MED" "$PEER_MED"))}"
        if [[ -n "$GROWTH_MAX" ]]; then
            printf -- '- RSS growth ≤ 64 MiB (the target is for 1M × 4 KiB): **%s** (max %s MiB)\n' \
                "$(awk -v g="$GROWTH_MAX" 'BEGIN { print (g <= 65536 ? "met" : "MISSED") }')" "$(mib "$GROWTH_MAX")"
        fi
        if [[ -n "$OSCAN_MED" ]]; then
            printf -- '- ors_session_scan no slower than the old library: **%s** (new / old %s)\n' \
                "$(verdict "$(ratio "$LSCAN_MED" "$OSCAN_MED")" 1)" "$(ratio "$LSCAN_MED" "$OSCAN_MED")"
        else
            printf -- '- ors_session_scan no slower than the old library: not measured here (`--old-lib-dir`)\n'
        fi
        if ((${#FAILED_RUNS[@]})); then
            printf -- '- **failed runs**: %s\n' "${FAILED_RUNS[*]}"
        fi
        printf '\n<details><summary>RESULT lines of this run</summary>\n\n```\n'
        printf '%s\n' "${ALL_LINES[@]//"$REPO"\//}"
        printf '```\n\n</details>\n<!-- /restore-run %s -->\n' "$key"
    )
    tmp="$OUT.tmp.$$"
    if [[ ! -s "$OUT" ]]; then
        printf '# Restore: ors_session_restore against a hand-written hiredis reader\n\n'
        printf 'Written by `bench/restore.sh`; [README.md](README.md#restore) says what each column means. One section per data set, replaced when that data set is measured again.\n\n'
    else
        # Everything but this data set's old section.
        awk -v key="$key" '
            $0 == "<!-- restore-run " key " -->" { skip = 1 }
            !skip { print }
            $0 == "<!-- /restore-run " key " -->" { skip = 0 }' "$OUT"
    fi >"$tmp"
    printf '%s\n' "$section" >>"$tmp"
    mv "$tmp" "$OUT"
    say "report: $OUT (section $key)"
}
if [[ -n "$OUT" ]]; then
    write_report
fi

if ((SMOKE)); then
    echo "$passed passed, $failed failed"
    ((failed == 0 && ${#FAILED_RUNS[@]} == 0)) || exit 1
elif ((${#FAILED_RUNS[@]})); then
    say "failed runs: ${FAILED_RUNS[*]}"
    exit 1
fi
exit 0
