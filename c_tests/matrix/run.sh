#!/usr/bin/env bash
# The compatibility matrix: for each server build of c_tests/matrix/versions.txt,
# fetch it (c_tests/matrix/fetch.sh, cached), start a 3-master cluster of it, run the
# core C harness against it, then the authentication and TLS passes, and
# print one table row.
#
#   c_tests/matrix/run.sh                  the rows that install without compiling (CI)
#   c_tests/matrix/run.sh --full           every row, source builds included; writes c_tests/matrix/results.md
#   c_tests/matrix/run.sh --only 3.0.5 valkey-9.0.0 ...
#
# Per row:
#   core  ctest -L core (every test_*.c, the C++ consumer, the demo, ...) on a
#         cluster on 127.0.0.1:7200-7205 and a standalone server on 7210;
#         UNLINK vs DEL is read from the masters' INFO commandstats afterwards.
#   auth  the cluster again with passwords: an ACL user (username + password,
#         c_tests/acl.conf) from Redis 6.0 on, requirepass (password alone)
#         before; test_status, test_roundtrip, test_threads, test_errors,
#         test_recovery (and acl_checks from 6.0 on) log in with it; the AUTH
#         calls are counted from commandstats.
#   tls   where the build has TLS: a TLS-only cluster (tls-cluster,
#         tls-replication), test_roundtrip and test_status over TLS.
#
# Options: --full, --only ROW..., --results FILE (default: c_tests/matrix/results.md
# with --full, target/matrix/results.md otherwise), --no-auth, --no-tls,
# --passes-on "ROW ..." (the authentication and TLS passes on these rows only;
# the core harness on every row).
# Environment: ORS_MATRIX_CACHE (downloads and builds, default
# ~/.cache/ors-redis-matrix), REDIS_CLI (a redis-cli with --cluster, Redis 5+;
# default redis-cli), CARGO.
set -euo pipefail

PROG=run.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"

export ORS_MATRIX_CACHE=${ORS_MATRIX_CACHE:-$HOME/.cache/ors-redis-matrix}
CARGO=${CARGO:-cargo}
REDIS_CLI=$(command -v "${REDIS_CLI:-redis-cli}" || true)
PORT=7200
STANDALONE_PORT=7210
WORK=$REPO/target/matrix
BUILD=$WORK/c_tests-build
NODES="127.0.0.1:$PORT;127.0.0.1:$((PORT + 1));127.0.0.1:$((PORT + 2))"
DEFAULT_PW=ors-default-pw

say() { printf '%s: %s\n' "$PROG" "$*"; }
step() { printf '\n=== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

FULL=0 AUTH_PASS=1 TLS_PASS=1 RESULTS="" ONLY=() PASS_ROWS=()
while (($# > 0)); do
    case "$1" in
    --full) FULL=1 ;;
    --no-auth) AUTH_PASS=0 ;;
    --passes-on)
        (($# >= 2)) || die "--passes-on needs a list of rows"
        read -r -a PASS_ROWS <<<"$2"
        shift
        ;;
    --no-tls) TLS_PASS=0 ;;
    --results)
        (($# >= 2)) || die "--results needs a file"
        RESULTS=$2
        shift
        ;;
    --only)
        shift
        while (($# > 0)) && [[ "$1" != --* ]]; do
            ONLY+=("$1")
            shift
        done
        ((${#ONLY[@]} > 0)) || die "--only needs at least one ROW"
        continue
        ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
if [[ -z "$RESULTS" ]]; then
    if ((FULL)) && ((${#ONLY[@]} == 0)); then RESULTS=$HERE/results.md; else RESULTS=$WORK/results.md; fi
fi

# --- rows -------------------------------------------------------------------

ROWS=() KIND=() CI=() SPEC=()
while IFS= read -r line; do
    line=${line%%#*}
    [[ -n "${line// /}" ]] || continue
    read -r -a f <<<"$line"
    ROWS+=("${f[0]}")
    KIND+=("${f[1]}")
    CI+=("${f[2]}")
    SPEC+=("${f[*]:3}")
done <"$HERE/versions.txt"

SELECTED=()
if ((${#ONLY[@]} > 0)); then
    for want in "${ONLY[@]}"; do
        found=""
        for i in "${!ROWS[@]}"; do [[ "${ROWS[i]}" == "$want" ]] && found=$i; done
        [[ -n "$found" ]] || die "no row '$want' in c_tests/matrix/versions.txt (rows: ${ROWS[*]})"
        SELECTED+=("$found")
    done
else
    for i in "${!ROWS[@]}"; do
        if ((FULL)) || [[ "${CI[i]}" == yes ]]; then SELECTED+=("$i"); fi
    done
fi

# source: a short human name for where a build comes from
source_of() {
    local i=$1 s
    read -r -a s <<<"${SPEC[i]}"
    case "${KIND[i]}" in
    wheel) printf 'PyPI %s (wheel)\n' "${s[0]}" ;;
    sdist) printf 'PyPI %s (sdist, make %s)\n' "${s[0]}" "${s[*]:1}" ;;
    deb) printf 'Debian %s .deb\n' "${s[0]}" ;;
    debsrc) printf 'Debian %s source of %s (make %s)\n' "${s[0]}" "${s[1]}" "${s[*]:2}" ;;
    esac
}

# --- servers: start, stop, always stopped on exit -------------------------------

# The environment cluster.sh and standalone.sh run with for the current pass.
export ORS_CLUSTER_PORT=$PORT ORS_STANDALONE_PORT=$STANDALONE_PORT
export ORS_CLUSTER_DIR=$WORK/cluster ORS_STANDALONE_DIR=$WORK/standalone
export REDIS_CLI

stop_servers() {
    "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || say "warning: cluster.sh stop failed" >&2
    "$REPO/c_tests/standalone.sh" stop >/dev/null 2>&1 || say "warning: standalone.sh stop failed" >&2
}

cleanup() {
    local rc=$?
    # Whatever the pass left: the plain, password and TLS clusters share ports.
    stop_servers
    env REDISCLI_AUTH=$DEFAULT_PW "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
    if [[ -n "${TLS_CLI_ARGS:-}" ]]; then
        env ORS_REDIS_CLI_ARGS="$TLS_CLI_ARGS" ORS_CLUSTER_TLS_DIR="$TLS_DIR" "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cli ARGS...: redis-cli against the cluster's first node for the current pass.
cli_port() {
    local port=$1
    shift
    timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "${CLI_ARGS[@]}" "$@" 2>/dev/null
}
CLI_ARGS=()

reset_stats() {
    local p
    for ((p = PORT; p < PORT + 6; p++)); do cli_port "$p" CONFIG RESETSTAT >/dev/null || true; done
}

# cmdstat NAME: calls of command NAME summed over the masters. (Replicas
# execute what their master propagates: every UNLINK again, and a DEL for
# each key that expires.)
cmdstat() {
    local name=$1 p total=0 n
    for ((p = PORT; p < PORT + 6; p++)); do
        cli_port "$p" INFO replication | tr -d '\r' | grep -qx 'role:master' || continue
        n=$(cli_port "$p" INFO commandstats | tr -d '\r' | sed -n "s/^cmdstat_$name:calls=\([0-9]*\),.*/\1/p")
        total=$((total + ${n:-0}))
    done
    printf '%s\n' "$total"
}

# The server's own version line, from INFO (valkey_version where present).
server_reports() {
    local info v
    info=$(cli_port "$PORT" INFO server | tr -d '\r')
    v=$(sed -n 's/^valkey_version:\(.*\)/valkey \1/p' <<<"$info")
    [[ -n "$v" ]] || v=$(sed -n 's/^redis_version:\(.*\)/\1/p' <<<"$info")
    printf '%s\n' "${v:-?}"
}

# What one node entry of CLUSTER SLOTS holds on this server: "ip, port" (3.0),
# "ip, port, id", "ip, port, id, metadata" (7.0 on: host names and more).
slots_entry_shape() {
    timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$PORT" "${CLI_ARGS[@]}" --json CLUSTER SLOTS 2>/dev/null |
        python3 -c '
import json, sys
entry = json.load(sys.stdin)[0][2]
names = ["ip", "port", "id", "metadata"]
print(", ".join(names[:len(entry)]) + (", ..." if len(entry) > 4 else ""))
' 2>/dev/null || printf '?\n'
}

# Sums the "N passed, M failed" lines of a log into CHECKS_OK / CHECKS_BAD.
count_checks() {
    local log=$1 line
    CHECKS_OK=0 CHECKS_BAD=0
    while IFS= read -r line; do
        [[ "$line" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed ]] || continue
        CHECKS_OK=$((CHECKS_OK + BASH_REMATCH[1]))
        CHECKS_BAD=$((CHECKS_BAD + BASH_REMATCH[2]))
    done <"$log"
}

# --- checks before starting -------------------------------------------------------

[[ -n "$REDIS_CLI" ]] || die "redis-cli not found (apt-get install redis-tools, or set REDIS_CLI)"
cli_version=$("$REDIS_CLI" --version | sed -n 's/^redis-cli \([0-9]*\)\..*/\1/p')
((${cli_version:-0} >= 5)) || die "$REDIS_CLI is too old for --cluster create (need Redis 5+; Debian's redis-tools 7.0 works)"
for tool in cmake cc c++ unzip dpkg-deb python3 openssl; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found"
done
python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip not found (apt-get install python3-pip)"
for port in $(seq "$PORT" $((PORT + 5))) "$STANDALONE_PORT"; do
    if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
        # Ours from an interrupted run? cluster.sh / standalone.sh stop only what they started.
        stop_servers
        env REDISCLI_AUTH=$DEFAULT_PW "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null &&
            die "port $port is in use by a process this script did not start"
    fi
done

# --- fetch ----------------------------------------------------------------------

mkdir -p "$WORK"
step "fetch ${#SELECTED[@]} server build(s) (cache: $ORS_MATRIX_CACHE)"
declare -A LAUNCHER FETCH_ERROR
for i in "${SELECTED[@]}"; do
    row=${ROWS[i]}
    if out=$("$HERE/fetch.sh" "$row" 2>"$WORK.fetch.log"); then
        LAUNCHER[$row]=$out
        say "$row: $("$out" --version | head -n 1)"
    else
        cat "$WORK.fetch.log" >&2
        FETCH_ERROR[$row]=$(grep 'error:' "$WORK.fetch.log" | tail -n 1 | sed 's/^fetch.sh: error: //')
        say "$row: FETCH FAILED: ${FETCH_ERROR[$row]}"
    fi
done
rm -f "$WORK.fetch.log"

# --- the library and the test programs, built once ---------------------------------------

mkdir -p "$WORK"
step "cargo build --release --features cli, C test programs in $BUILD"
"$CARGO" build --release --features cli
first_launcher=""
for i in "${SELECTED[@]}"; do
    [[ -n "${LAUNCHER[${ROWS[i]}]:-}" ]] && { first_launcher=${LAUNCHER[${ROWS[i]}]}; break; }
done
[[ -n "$first_launcher" ]] || die "no server build could be fetched"
configure() {
    cmake -S "$REPO/c_tests" -B "$BUILD" \
        -DCARGO="$(command -v "$CARGO")" \
        -DORS_TEST_PORT="$PORT" \
        -DORS_STANDALONE_PORT="$STANDALONE_PORT" \
        -DREDIS_CLI="$REDIS_CLI" \
        -DREDIS_SERVER="$1" \
        -DORS_TESTS_VALGRIND=OFF -DORS_SANITIZE=OFF >"$WORK/cmake.log" 2>&1 ||
        { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
}
configure "$first_launcher"
cmake --build "$BUILD" --parallel "$(nproc 2>/dev/null || echo 2)" >"$WORK/build.log" 2>&1 ||
    { tail -n 40 "$WORK/build.log" >&2; die "building the C test programs failed (log: $WORK/build.log)"; }

TLS_DIR=$WORK/tls
"$REPO/c_tests/tls-certs.sh" "$TLS_DIR"
TLS_CLI_ARGS="--tls --cacert $TLS_DIR/ca.pem"

# --- one row ----------------------------------------------------------------------

# Row results, by row name.
declare -A R_SERVER R_SLOTS R_CORE R_CHECKS R_DEL R_AUTH R_TLS R_SECONDS R_FAILS
ANY_FAILED=0

# version_num of the row's server (MAJOR*100+MINOR).
row_version_num() {
    REDIS_SERVER=$1 bash -c '. "$0/c_tests/redis-lib.sh"; server_version_num' "$REPO"
}

core_pass() {
    local row=$1 launcher=$2 summary tests_ok tests_total unlink del
    local log=$WORK/$row/core.log
    configure "$launcher"
    CLI_ARGS=()
    export REDIS_SERVER=$launcher
    if ! "$REPO/c_tests/cluster.sh" start >"$WORK/$row/cluster-start.log" 2>&1 ||
        ! "$REPO/c_tests/standalone.sh" start >>"$WORK/$row/cluster-start.log" 2>&1; then
        cat "$WORK/$row/cluster-start.log" >&2
        R_CORE[$row]="servers did not start"
        R_FAILS[$row]+="core: servers did not start; "
        stop_servers
        return 1
    fi
    R_SERVER[$row]=$(server_reports)
    R_SLOTS[$row]=$(slots_entry_shape)
    reset_stats
    # The fixtures' cleanup is left out (-FC): the nodes' commandstats are read after the run.
    ctest --test-dir "$BUILD" -L core -FC 'cluster|standalone' --output-on-failure --timeout 300 >"$log" 2>&1 || true
    summary=$(grep -E '^[0-9]+% tests passed' "$log" | tail -n 1)
    tests_total=$(sed -n 's/.* out of \([0-9]*\)$/\1/p' <<<"$summary")
    tests_ok=$((${tests_total:-0} - $(sed -n 's/.*passed, \([0-9]*\) tests failed.*/\1/p' <<<"$summary")))
    count_checks "$BUILD/Testing/Temporary/LastTest.log"
    R_CORE[$row]="$tests_ok/${tests_total:-?}"
    R_CHECKS[$row]="$CHECKS_OK passed, $CHECKS_BAD failed"
    unlink=$(cmdstat unlink)
    del=$(cmdstat del)
    R_DEL[$row]="UNLINK $unlink, DEL $del"
    stop_servers
    if [[ -z "$summary" || "$tests_ok" != "$tests_total" || "$CHECKS_BAD" != 0 ]]; then
        R_FAILS[$row]+="core: $(grep -E '^\s+[0-9]+ - ' "$log" | sed 's/^ *[0-9]* - //; s/ (.*//' | tr '\n' ' '); "
        return 1
    fi
}

# run_programs LOG NAME...: runs test programs of the build directly (env set by the caller).
run_programs() {
    local log=$1 name rc=0
    shift
    : >"$log"
    for name in "$@"; do
        printf '### %s\n' "$name" >>"$log"
        timeout 300 "$BUILD/$name" >>"$log" 2>&1 || {
            rc=1
            FAILED_PROGRAMS+="$name "
        }
    done
    return "$rc"
}

auth_pass() {
    local row=$1 launcher=$2 num=$3 auth what programs calls
    local log=$WORK/$row/auth.log conf=$WORK/$row/auth.conf
    programs=(test_status test_roundtrip test_threads test_errors test_recovery)
    if ((num >= 600)); then
        # acl.conf as it is from 6.2; 6.0 knows no pub/sub channel rules.
        if ((num >= 602)); then cp "$REPO/c_tests/acl.conf" "$conf"; else sed 's/ resetchannels / /' "$REPO/c_tests/acl.conf" >"$conf"; fi
        auth="username=ors password=ors-test-pw"
        what="user + password"
        programs+=(acl_checks)
    else
        printf '%s\n' "requirepass $DEFAULT_PW" "masterauth $DEFAULT_PW" >"$conf"
        auth="password=$DEFAULT_PW"
        what="password"
    fi
    export REDIS_SERVER=$launcher REDISCLI_AUTH=$DEFAULT_PW
    CLI_ARGS=()
    if ! ORS_CLUSTER_EXTRA_CONF=$conf "$REPO/c_tests/cluster.sh" start >"$WORK/$row/auth-start.log" 2>&1; then
        cat "$WORK/$row/auth-start.log" >&2
        R_AUTH[$row]="cluster did not start"
        R_FAILS[$row]+="auth: cluster did not start; "
        unset REDISCLI_AUTH
        return 1
    fi
    reset_stats
    FAILED_PROGRAMS=""
    ORS_TEST_NODES=$NODES ORS_TEST_PORT=$PORT ORS_TEST_AUTH=$auth run_programs "$log" "${programs[@]}" || true
    count_checks "$log"
    calls=$(cmdstat auth)
    if ((num < 600)); then
        # No ACL users before 6.0: a username must be refused, with a message that says why.
        if out=$(timeout 60 "$REPO/target/release/ors-redis" sessions count \
            --config "redis-nodes=$NODES cluster-name=matrix username=ors password=$DEFAULT_PW" 2>&1); then
            what+=" (a username was accepted!)"
            R_FAILS[$row]+="auth: a username was accepted by a server without ACL users; "
        elif [[ "$out" == *"predates Redis 6"* ]]; then
            what+=" (a username is refused: \"predates Redis 6\")"
        else
            what+=" (username: unexpected answer)"
            R_FAILS[$row]+="auth: with a username: $out; "
        fi
        printf '### username on a server before 6.0\n%s\n' "$out" >>"$log"
    fi
    "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
    unset REDISCLI_AUTH
    R_AUTH[$row]="$what: AUTH $calls; $CHECKS_OK passed, $CHECKS_BAD failed"
    if [[ -n "$FAILED_PROGRAMS" || "$CHECKS_BAD" != 0 ]]; then
        R_FAILS[$row]+="auth: $FAILED_PROGRAMS; "
        return 1
    fi
    [[ "${R_FAILS[$row]:-}" != *"auth: "* ]]
}

tls_pass() {
    local row=$1 launcher=$2 num=$3 cli
    local log=$WORK/$row/tls.log
    if ((num < 600)); then
        R_TLS[$row]="none before 6.0"
        return 0
    fi
    export REDIS_SERVER=$launcher
    # redis-cli with TLS for cluster.sh and the harness (a wrapper: REDIS_CLI is one word).
    cli=$WORK/redis-cli-tls
    printf '#!/bin/sh\nexec %s %s "$@"\n' "$REDIS_CLI" "$TLS_CLI_ARGS" >"$cli"
    chmod +x "$cli"
    read -r -a CLI_ARGS <<<"$TLS_CLI_ARGS"
    if ! ORS_CLUSTER_TLS_DIR=$TLS_DIR ORS_REDIS_CLI_ARGS="$TLS_CLI_ARGS" "$REPO/c_tests/cluster.sh" start \
        >"$WORK/$row/tls-start.log" 2>&1; then
        # A build without TLS refuses the tls-* lines (or tls-port) at start.
        if grep -qiE 'tls.*(not (built|supported|compiled))|failed finding tls support|bad directive|unknown option|no such config' \
            "$WORK/$row/tls-start.log" "$WORK/cluster/$PORT/redis.log" 2>/dev/null; then
            R_TLS[$row]="not in this build"
            ORS_CLUSTER_TLS_DIR=$TLS_DIR ORS_REDIS_CLI_ARGS="$TLS_CLI_ARGS" "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
            CLI_ARGS=()
            return 0
        fi
        cat "$WORK/$row/tls-start.log" >&2
        R_TLS[$row]="TLS cluster did not start"
        R_FAILS[$row]+="tls: cluster did not start; "
        CLI_ARGS=()
        return 1
    fi
    FAILED_PROGRAMS=""
    REDIS_CLI=$cli ORS_TEST_NODES=$NODES ORS_TEST_PORT=$PORT \
        ORS_TEST_AUTH="tls-enabled=true tls-cacert=$TLS_DIR/ca.pem" run_programs "$log" test_status test_roundtrip || true
    count_checks "$log"
    ORS_CLUSTER_TLS_DIR=$TLS_DIR ORS_REDIS_CLI_ARGS="$TLS_CLI_ARGS" "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
    CLI_ARGS=()
    R_TLS[$row]="yes: $CHECKS_OK passed, $CHECKS_BAD failed"
    if [[ -n "$FAILED_PROGRAMS" || "$CHECKS_BAD" != 0 ]]; then
        R_FAILS[$row]+="tls: $FAILED_PROGRAMS; "
        return 1
    fi
}

for i in "${SELECTED[@]}"; do
    row=${ROWS[i]}
    [[ -n "${LAUNCHER[$row]:-}" ]] || continue
    launcher=${LAUNCHER[$row]}
    num=$(row_version_num "$launcher")
    mkdir -p "$WORK/$row"
    started=$SECONDS
    step "$row: core harness (cluster 127.0.0.1:$PORT-$((PORT + 5)), standalone $STANDALONE_PORT)"
    core_pass "$row" "$launcher" || ANY_FAILED=1
    say "$row: ${R_SERVER[$row]:-?}: ${R_CORE[$row]:-}, checks ${R_CHECKS[$row]:-}, ${R_DEL[$row]:-}"
    # --passes-on: the authentication and TLS passes only on these rows.
    passes=1
    if ((${#PASS_ROWS[@]} > 0)) && ! printf '%s\n' "${PASS_ROWS[@]}" | grep -qxF "$row"; then
        passes=0
        R_AUTH[$row]="not run (--passes-on)"
        R_TLS[$row]="not run (--passes-on)"
    fi
    if ((AUTH_PASS && passes)); then
        step "$row: authentication pass"
        auth_pass "$row" "$launcher" "$num" || ANY_FAILED=1
        say "$row: ${R_AUTH[$row]}"
    fi
    if ((TLS_PASS && passes)); then
        step "$row: TLS pass"
        tls_pass "$row" "$launcher" "$num" || ANY_FAILED=1
        say "$row: TLS ${R_TLS[$row]}"
    fi
    R_SECONDS[$row]=$((SECONDS - started))
done

# --- the table ------------------------------------------------------------------------

{
    printf '| server | source | CLUSTER SLOTS node entry | core: ctest tests | core: checks | delete commands the masters ran | auth pass | TLS pass | time |\n'
    printf '|---|---|---|---|---|---|---|---|---:|\n'
    for i in "${SELECTED[@]}"; do
        row=${ROWS[i]}
        if [[ -n "${FETCH_ERROR[$row]:-}" ]]; then
            printf '| %s | %s | **fetch failed**: %s | | | | | | |\n' "$row" "$(source_of "$i")" "${FETCH_ERROR[$row]}"
            ANY_FAILED=1
            continue
        fi
        name=${R_SERVER[$row]:-$row}
        [[ "$row" == *-tls ]] && name+=" (TLS build)"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %ss |\n' "$name" "$(source_of "$i")" "${R_SLOTS[$row]:-?}" \
            "${R_CORE[$row]:-}" "${R_CHECKS[$row]:-}" "${R_DEL[$row]:-}" "${R_AUTH[$row]:-skipped}" \
            "${R_TLS[$row]:-skipped}" "${R_SECONDS[$row]:-?}"
    done
} >"$WORK/table.md"

{
    printf '<!-- written by c_tests/matrix/run.sh%s on %s -->\n' "$( ((FULL)) && printf ' --full')" "$(date -u +%Y-%m-%d)"
    cat "$WORK/table.md"
    fails=""
    for i in "${SELECTED[@]}"; do
        row=${ROWS[i]}
        [[ -n "${R_FAILS[$row]:-}" ]] && fails+="- $row: ${R_FAILS[$row]}"$'\n'
    done
    if [[ -n "$fails" ]]; then printf '\nFailures:\n\n%s' "$fails"; fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"

step "matrix (also in $RESULTS)"
cat "$RESULTS"
if ((ANY_FAILED)); then
    echo "=== matrix: FAILED rows above (logs in $WORK/<row>/)" >&2
    exit 1
fi
echo "=== matrix: every row passed"
