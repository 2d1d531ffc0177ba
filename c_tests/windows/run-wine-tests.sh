#!/usr/bin/env bash
# The Windows tests: ors_redis.dll (from cmake/windows-build.sh) used by
# Windows programs under wine, against Redis servers on this Linux host.
#
#   c_tests/windows/run-wine-tests.sh      (cmake/windows-build.sh --test runs it)
#
#   0. the library's unit tests (cargo test --lib) built for Windows;
#   1. msvc_link_probe.exe, linked by lld-link through ors_redis.lib alone;
#   2. win_contract.exe (mingw gcc): every export, every status code the
#      library produces against real servers, binary values, TTLs, scan,
#      16 native threads, an exited thread's connections, shutdown while
#      threads call, op-timeout against a master SIGSTOPped from here (and
#      its connection reset, not closed: no CLOSE-WAIT socket left on the
#      stopped master), TLS with tls-cacert; this script then checks the
#      TTLs it left from the Linux side;
#   3. the CMake package installed for Windows (cmake/mingw-w64-x86_64.cmake)
#      and c_tests/package/ built out of tree with it, run under wine.
#
# Wine 8.0 lacks bcryptprimitives.dll (ProcessPrng): a stand-in built here
# from bcryptprimitives_standin.c sits beside the test programs. It is test
# setup only and never part of what ships.
#
# Servers: a cluster on ORS_WIN_PORT..+5 (default 7300), a standalone Redis
# on +10, nothing on +19, the TLS cluster on +20..+25, a node with an
# expired certificate on +30, a cluster node without slots on +40. All are
# stopped on exit. The last line is
# "N passed, M failed".
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE=${ORS_WIN_PORT:-7300}
WORK=$REPO/target/windows-test
DIST=$REPO/target/windows
MINGW=x86_64-w64-mingw32
CLUSTER_NAME=win_contract
export WINEPREFIX=${WINEPREFIX:-$REPO/target/wineprefix}
export WINEDEBUG=${WINEDEBUG:--all}
# No Mono or Gecko installer prompts when wine creates the prefix.
export WINEDLLOVERRIDES=${WINEDLLOVERRIDES:-mscoree,mshtml=}
REDIS_CLI=${REDIS_CLI:-redis-cli}

[[ -f "$DIST/bin/ors_redis.dll" ]] || {
    echo "run-wine-tests.sh: $DIST/bin/ors_redis.dll missing: run cmake/windows-build.sh first" >&2
    exit 1
}
command -v wine >/dev/null || {
    echo "run-wine-tests.sh: wine not found (apt-get install wine wine64)" >&2
    exit 1
}

# shellcheck source=c_tests/checks.sh
. "$REPO/c_tests/checks.sh"

cluster_env=(ORS_CLUSTER_PORT="$BASE" ORS_CLUSTER_DIR="$WORK/cluster" ORS_CLUSTER_NODE_TIMEOUT=15000)
standalone_env=(ORS_STANDALONE_PORT=$((BASE + 10)) ORS_STANDALONE_DIR="$WORK/standalone")
tls_env=(ORS_TLS_CLUSTER_PORT=$((BASE + 20)) ORS_TLS_BAD_PORT=$((BASE + 30)) ORS_TLS_DIR="$WORK/tls")
noslots=$WORK/noslots
stopped_pid=
cleanup() {
    [[ -n "$stopped_pid" ]] && kill -CONT "$stopped_pid" 2>/dev/null
    [[ -s "$noslots/redis.pid" ]] && kill "$(cat "$noslots/redis.pid")" 2>/dev/null
    env "${tls_env[@]}" "$REPO/c_tests/tls-servers.sh" stop >/dev/null 2>&1 || true
    env "${standalone_env[@]}" "$REPO/c_tests/standalone.sh" stop >/dev/null 2>&1 || true
    env "${cluster_env[@]}" "$REPO/c_tests/cluster.sh" stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "# servers: cluster $BASE..$((BASE + 5)), standalone $((BASE + 10)), TLS $((BASE + 20))..$((BASE + 25)) and $((BASE + 30)), no slots $((BASE + 40))"
env "${cluster_env[@]}" "$REPO/c_tests/cluster.sh" start >"$WORK.log" 2>&1 ||
    { cat "$WORK.log"; exit 1; }
env "${standalone_env[@]}" "$REPO/c_tests/standalone.sh" start >>"$WORK.log" 2>&1 ||
    { cat "$WORK.log"; exit 1; }
env "${tls_env[@]}" "$REPO/c_tests/tls-servers.sh" start >>"$WORK.log" 2>&1 ||
    { cat "$WORK.log"; exit 1; }
# A cluster node nobody gave slots to: init there is ORS_ERR_CLUSTER.
rm -rf "$noslots"
mkdir -p "$noslots"
"${REDIS_SERVER:-redis-server}" --port $((BASE + 40)) --bind 127.0.0.1 --cluster-enabled yes --cluster-config-file nodes.conf \
    --dir "$noslots" --pidfile "$noslots/redis.pid" --logfile "$noslots/redis.log" --save '' --appendonly no \
    --daemonize yes >/dev/null
for ((i = 0; i < 50; i++)); do
    [[ "$("$REDIS_CLI" -p $((BASE + 40)) ping 2>/dev/null)" == PONG ]] && break
    sleep 0.1
done

bin=$WORK/bin
sig=$WORK/signals
rm -rf "$bin" "$sig"
mkdir -p "$bin" "$sig"
cp "$DIST/bin/ors_redis.dll" "$bin/"
CFLAGS=(-std=c99 -O1 -Wall -Wextra -Wpedantic -Werror -I "$DIST/include")
$MINGW-gcc -Wall -Wextra -Werror -O1 -shared -o "$bin/bcryptprimitives.dll" "$HERE/bcryptprimitives_standin.c" -ladvapi32
$MINGW-gcc "${CFLAGS[@]}" -o "$bin/win_contract.exe" "$HERE/win_contract.c" -L "$DIST/lib" -lors_redis
[[ -f "$REPO/target/windows-probe/msvc_link_probe.exe" ]] && cp "$REPO/target/windows-probe/msvc_link_probe.exe" "$bin/"

# The test programs need nothing beyond system DLLs either (no libgcc_s, no
# libwinpthread beside them), so what they prove is about ors_redis.dll.
deps=$($MINGW-objdump -p "$bin/win_contract.exe" | sed -n 's/^\s*DLL Name: //p' | tr '\n' ' ')
check "win_contract.exe imports only $deps" bash -c "! grep -qiE 'libgcc|winpthread|libstdc' <<<'$deps'"

winpath() { echo "Z:$1"; } # forward slashes: no escaping in the config string

echo "# 0. the library's unit tests built for Windows, run under wine"
# The panic boundary test among them: a panic is caught at the C boundary
# with the Windows unwinder too (ORS_ERR_INTERNAL, the library goes on).
unit=$WORK/unit-tests.log
if (cd "$REPO" && WINEPATH="Z:$bin" CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine \
    "${CARGO:-cargo}" test --release --target x86_64-pc-windows-gnu --lib >"$unit" 2>&1); then
    ok "cargo test --lib under wine: $(grep -o 'test result: .*passed; [0-9]* failed' "$unit" | tail -n 1)"
else
    fail "cargo test --lib under wine"
    grep -E '^test .* FAILED|panicked|^error' "$unit" | head -n 20 | sed 's/^/#   /'
fi

echo "# 1. an MSVC-linked program (lld-link, ors_redis.lib)"
if [[ -f "$bin/msvc_link_probe.exe" ]]; then
    check "msvc_link_probe.exe runs under wine and finds the version it was built against" \
        bash -c "cd '$bin' && wine msvc_link_probe.exe"
fi

echo "# 2. win_contract.exe under wine"
# A WRONGTYPE key for ORS_ERR_SERVER, made from here as a Redis client would.
"$REDIS_CLI" -c -p "$BASE" hset "ORS:$CLUSTER_NAME:{win-wrongtype}" f v >/dev/null
"$REDIS_CLI" -c -p "$BASE" expire "ORS:$CLUSTER_NAME:{win-wrongtype}" 600 >/dev/null
nodes="127.0.0.1:$BASE;127.0.0.1:$((BASE + 1));127.0.0.1:$((BASE + 2))"
log=$WORK/win_contract.log
(
    cd "$bin"
    ORS_TEST_NODES=$nodes ORS_WIN_CLUSTER=$CLUSTER_NAME ORS_STANDALONE_PORT=$((BASE + 10)) \
        ORS_WIN_CLOSED_PORT=$((BASE + 19)) ORS_WIN_NOSLOTS_PORT=$((BASE + 40)) ORS_WIN_SIGNALS=$(winpath "$sig") \
        ORS_WIN_TLS_NODES="127.0.0.1:$((BASE + 20));127.0.0.1:$((BASE + 21))" \
        ORS_WIN_TLS_BAD_PORT=$((BASE + 30)) ORS_WIN_TLS_CERTS=$(winpath "$WORK/tls/certs") \
        timeout 300 wine win_contract.exe
) >"$log" 2>&1 &
prog=$!

# The stop-node handshake: SIGSTOP the master on $BASE once the program is
# warm, look at that master's sockets while it is frozen, resume it.
wait_file() { # wait_file NAME SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [[ -e "$sig/$1" ]] && return 0
        kill -0 "$prog" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
if wait_file ready 240; then
    stopped_pid=$(env "${cluster_env[@]}" "$REPO/c_tests/cluster.sh" node-pid "$BASE")
    role=$("$REDIS_CLI" -p "$BASE" role | head -n 1)
    check "the node on $BASE is a master ($role)" test "$role" = master
    # Let the master close redis-cli's connection first: only the DLL's may count.
    sleep 0.5
    kill -STOP "$stopped_pid"
    touch "$sig/stopped"
    if wait_file timed-out 60; then
        # A graceful close would leave the frozen master's end in CLOSE-WAIT;
        # an abort (RST, SO_LINGER 0) removes it.
        close_wait=$(ss -Htn state close-wait "( sport = :$BASE )" | wc -l)
        check "the timed-out connections were reset, not closed: $close_wait sockets of the stopped master in CLOSE-WAIT" \
            test "$close_wait" -eq 0
    else
        fail "win_contract.exe reported its timeouts"
    fi
    kill -CONT "$stopped_pid"
    stopped_pid=
    touch "$sig/resumed"
else
    fail "win_contract.exe got ready for the stop-node test"
fi
rc=0
wait "$prog" || rc=$?
# Windows text-mode output ends lines with CRLF.
sed -i 's/\r$//' "$log"
# wine prints its own diagnostics on stderr; the checks are the ok/FAIL lines.
grep -E '^(ok|FAIL) - |^# ' "$log" || true
p=$(grep -c '^ok - ' "$log" || true)
f=$(grep -c '^FAIL - ' "$log" || true)
passed=$((passed + p))
failed=$((failed + f))
tail_line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" || true)
check "win_contract.exe exited 0 with its summary ($tail_line, exit $rc)" test "$rc" -eq 0 -a -n "$tail_line"
if ((rc != 0)) && [[ -z "$tail_line" ]]; then
    sed 's/^/#   /' "$log" | tail -n 30
fi

ttl=$("$REDIS_CLI" -c -p "$BASE" ttl "ORS:$CLUSTER_NAME:{win-ttl-default}")
check "put with ttl 0 under wine: the key's TTL is default-ttl=7777 (Linux side sees $ttl)" \
    test "$ttl" -gt 7700 -a "$ttl" -le 7777
ttl=$("$REDIS_CLI" -c -p "$BASE" ttl "ORS:$CLUSTER_NAME:{win-ttl-300}")
check "put with ttl 300 under wine: TTL $ttl" test "$ttl" -gt 200 -a "$ttl" -le 300
no_ttl=0
for port in $BASE $((BASE + 1)) $((BASE + 2)); do
    while read -r key; do
        [[ -z "$key" ]] && continue
        [[ "$("$REDIS_CLI" -p "$port" ttl "$key")" == -1 ]] && no_ttl=$((no_ttl + 1))
    done < <("$REDIS_CLI" -p "$port" --scan --pattern "ORS:$CLUSTER_NAME:*" 2>/dev/null || true)
done
check "every key written from wine has a TTL ($no_ttl without)" test "$no_ttl" -eq 0

echo "# 3. the CMake package for Windows"
pk=0
ORS_WIN_NODES=$nodes ORS_WIN_STANDIN=$bin "$HERE/package-test.sh" >"$WORK/package.log" 2>&1 || pk=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$WORK/package.log" || true
passed=$((passed + $(grep -c '^ok - ' "$WORK/package.log" || true)))
failed=$((failed + $(grep -c '^FAIL - ' "$WORK/package.log" || true)))
((pk == 0)) || grep -q '^FAIL - ' "$WORK/package.log" || fail "c_tests/windows/package-test.sh exited $pk"

echo "$passed passed, $failed failed"
((failed == 0))
