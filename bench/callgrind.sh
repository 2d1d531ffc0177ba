#!/usr/bin/env bash
# Instructions, allocations and system calls per ors_session_put/get/del call,
# at one thread, with valgrind --tool=callgrind and strace.
#
#   bench/callgrind.sh [N]          N counted session cycles (default 2000)
#
# Each figure is a difference of runs of ors_bench (c_tests/bench.c) at one
# thread, after the same --warmup-ops cycles (which open the thread's
# connections): (--ops N minus --ops 0) / N, for the session shapes put,
# put+get and put+get+del (--mix 1:0:0, 1:1:0, 1:1:1); get = shape 2 - 1,
# del = shape 3 - 2. So start-up and connection set-up drop out.
#   - callgrind, collecting inside ors_session_put/get/del only
#     (--toggle-collect): instructions (Ir, user space) and malloc/free calls
#     per call, the allocation call sites, and the top self-cost functions
#     (callgrind_annotate);
#   - strace -f -c: system calls per call, and one traced session cycle.
#
# Environment:
#   ORS_BENCH_LIB_DIR     folder with libors_redis.so (default target/release, built if missing)
#   ORS_BENCH_PORT        first port of the cluster started here (default 7110)
#   ORS_BENCH_NODES       use a running cluster at these seed nodes instead (nothing started)
#   ORS_BENCH_VALUE_SIZE  value bytes (default 1024)
#   ORS_BENCH_VALUE_FILE  the value is this file's bytes instead (ors_bench --value-file)
#   ORS_BENCH_CONFIG_EXTRA more config keys, e.g. "compression=zstd"
#   ORS_BENCH_TLS_DIR     certificate folder for --tls (with ORS_BENCH_NODES of a TLS cluster)
#   ORS_BENCH_OUT         report file (default bench/callgrind-results.md)
#   ORS_BENCH_LABEL       what the library is, for the report (e.g. "commit 95e9f02")
# Needs valgrind, strace, cc; the cluster is started with c_tests/cluster.sh
# and stopped at the end (also on Ctrl-C).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
N=${1:-2000}
WARM=30
SIZE=${ORS_BENCH_VALUE_SIZE:-1024}
PORT=${ORS_BENCH_PORT:-7110}
OUT=${ORS_BENCH_OUT:-$HERE/callgrind-results.md}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [N>0]" >&2; exit 2; }
for tool in valgrind callgrind_annotate strace; do
    command -v "$tool" >/dev/null 2>&1 || { echo "callgrind.sh: $tool not found (apt-get install valgrind strace)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/ors-callgrind.XXXXXX)
STARTED=0
cleanup() {
    if ((STARTED)); then
        ORS_CLUSTER_PORT=$PORT ORS_CLUSTER_DIR=$WORK/cluster "$REPO/c_tests/cluster.sh" stop >/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The library and the bench binary.
LIB=${ORS_BENCH_LIB_DIR:-$REPO/target/release}
if [[ ! -e "$LIB/libors_redis.so" ]]; then
    [[ -z "${ORS_BENCH_LIB_DIR:-}" ]] || { echo "callgrind.sh: $LIB/libors_redis.so not found" >&2; exit 1; }
    (cd "$REPO" && cargo build --release --lib)
fi
LIB=$(cd "$LIB" && pwd)
[[ -e "$LIB/libors_redis.so.0" ]] || ln -s libors_redis.so "$LIB/libors_redis.so.0"
BENCH=$WORK/ors_bench
"${CC:-cc}" -O2 -g -std=gnu99 -Wall -Wextra -Wpedantic -Werror -I "$REPO/include" "$REPO/c_tests/bench.c" \
    -o "$BENCH" -L "$LIB" -lors_redis -lpthread -Wl,-rpath,"$LIB"

if [[ -n "${ORS_BENCH_NODES:-}" ]]; then
    NODES=$ORS_BENCH_NODES
else
    ORS_CLUSTER_PORT=$PORT ORS_CLUSTER_DIR=$WORK/cluster "$REPO/c_tests/cluster.sh" start >/dev/null
    STARTED=1
    NODES="127.0.0.1:$PORT;127.0.0.1:$((PORT + 1));127.0.0.1:$((PORT + 2))"
fi
CONFIG="redis-nodes=$NODES cluster-name=bench${ORS_BENCH_CONFIG_EXTRA:+ $ORS_BENCH_CONFIG_EXTRA}"
BENCH_ARGS=(--config "$CONFIG" --threads 1 --value-size "$SIZE" --warmup-ops "$WARM" --quiet)
if [[ -n "${ORS_BENCH_VALUE_FILE:-}" ]]; then
    BENCH_ARGS+=(--value-file "$ORS_BENCH_VALUE_FILE")
    SIZE=$(wc -c <"$ORS_BENCH_VALUE_FILE")
fi
[[ -z "${ORS_BENCH_TLS_DIR:-}" ]] || BENCH_ARGS+=(--tls "$ORS_BENCH_TLS_DIR")

# Total Ir, allocator calls, and allocation call sites (caller -> malloc or
# __rust_alloc) in a callgrind output file. Function names are compressed:
# "cfn=(id) name" the first time, "cfn=(id)" later; fn and cfn share the table.
# Call counts are recorded even outside the toggled functions, so only
# differences between runs are meaningful.
cg_awk() { # MODE FILE   (MODE: totals | sites)
    awk -v mode="$1" '
        function name_of(s,   id, rest) {
            id = s; sub(/\).*/, "", id); sub(/^\(/, "", id)
            rest = s; sub(/^\([0-9]+\) ?/, "", rest)
            if (rest != "") names[id] = rest
            return names[id]
        }
        /^fn=/  { fn = name_of(substr($0, 4)) }
        /^cfn=/ { callee = name_of(substr($0, 5)) }
        /^calls=/ {
            split(substr($0, 7), f, " ")
            if (callee == "malloc" || callee == "calloc" || callee == "realloc" || callee == "posix_memalign") allocs += f[1]
            if (callee == "free") frees += f[1]
            if (callee == "__rustc::__rust_alloc" || callee == "__rustc::__rust_realloc" ||
                ((callee == "malloc" || callee == "free") && fn !~ /^__rustc::__rdl_/))
                sites[fn " -> " callee] += f[1]
        }
        /^(totals|summary):/ { total = $2 }
        END {
            if (mode == "totals") printf "%d %d %d\n", total, allocs, frees
            else for (k in sites) printf "%d\t%s\n", sites[k], k
        }
    ' "$2"
}

cg_run() { # OUTFILE MIX OPS
    valgrind --tool=callgrind --callgrind-out-file="$1" --toggle-collect=ors_session_put \
        --toggle-collect=ors_session_get --toggle-collect=ors_session_del \
        "$BENCH" "${BENCH_ARGS[@]}" --mix "$2" --ops "$3" >/dev/null 2>"$1.log" ||
        { cat "$1.log" >&2; echo "callgrind.sh: valgrind run failed" >&2; exit 1; }
}

st_run() { # OUTFILE MIX OPS
    strace -f -c -o "$1" "$BENCH" "${BENCH_ARGS[@]}" --mix "$2" --ops "$3" >/dev/null
}

# syscall name -> calls, from strace -c output ($4 is "calls" with or without an errors column).
st_counts() { awk '/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ && $NF != "total" { print $NF, $4 }' "$1"; }

# Three session shapes: put only, put+get, put+get+del. Each one's cost per
# cycle is (run with N cycles - run with 0) / N; the cost of get is then
# shape 2 - shape 1, of del shape 3 - shape 2.
declare -A IR AL FR
for mix in 1:0:0 1:1:0 1:1:1; do
    cg_run "$WORK/cg.$mix.0" "$mix" 0
    cg_run "$WORK/cg.$mix.N" "$mix" "$N"
    read -r ir0 al0 fr0 < <(cg_awk totals "$WORK/cg.$mix.0")
    read -r irn aln frn < <(cg_awk totals "$WORK/cg.$mix.N")
    IR[$mix]=$((irn - ir0)); AL[$mix]=$((aln - al0)); FR[$mix]=$((frn - fr0))
    st_run "$WORK/st.$mix.0" "$mix" 0
    st_run "$WORK/st.$mix.N" "$mix" "$N"
done

per_call() { # A B -> (B - A) / N
    awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n }'
}

{
    echo "# Instructions per call (callgrind)"
    echo
    echo "ors_bench at T = 1, $SIZE-byte values, plain TCP unless said, $N counted session cycles after $WARM warm-up cycles."
    echo "Each figure is a difference of runs: (--ops $N minus --ops 0) / $N for the session shapes"
    echo "put, put+get and put+get+del (--mix 1:0:0, 1:1:0, 1:1:1), collecting inside ors_session_* only;"
    echo "get = shape 2 - shape 1, del = shape 3 - shape 2. Ir is user-space instructions (the kernel's share"
    echo "of send/recv is not in it). Allocations count malloc/calloc/realloc calls, the buffer that"
    echo "ors_session_get returns (freed by the caller with ors_free) included."
    if [[ -n "${ORS_BENCH_LABEL:-}" ]]; then
        echo "Library: $ORS_BENCH_LABEL ($LIB/libors_redis.so, built $(date -u -r "$LIB/libors_redis.so" '+%Y-%m-%d %H:%M UTC'))."
    elif [[ "$LIB" == "$REPO/target/release" ]]; then
        echo "Library: $LIB/libors_redis.so (repository HEAD $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))."
    else
        echo "Library: $LIB/libors_redis.so (built $(date -u -r "$LIB/libors_redis.so" '+%Y-%m-%d %H:%M UTC'))."
    fi
    echo
    echo "| call | instructions (Ir) per call | allocations per call | frees per call |"
    echo "|---|---:|---:|---:|"
    # shellcheck disable=SC2016 # the backticks are markdown
    printf '| `ors_session_put` | %s | %s | %s |\n' "$(per_call 0 "${IR[1:0:0]}" | sed 's/\.[0-9]*$//')" \
        "$(per_call 0 "${AL[1:0:0]}")" "$(per_call 0 "${FR[1:0:0]}")"
    # shellcheck disable=SC2016
    printf '| `ors_session_get` | %s | %s | %s |\n' "$(per_call "${IR[1:0:0]}" "${IR[1:1:0]}" | sed 's/\.[0-9]*$//')" \
        "$(per_call "${AL[1:0:0]}" "${AL[1:1:0]}")" "$(per_call "${FR[1:0:0]}" "${FR[1:1:0]}")"
    # shellcheck disable=SC2016
    printf '| `ors_session_del` | %s | %s | %s |\n' "$(per_call "${IR[1:1:0]}" "${IR[1:1:1]}" | sed 's/\.[0-9]*$//')" \
        "$(per_call "${AL[1:1:0]}" "${AL[1:1:1]}")" "$(per_call "${FR[1:1:0]}" "${FR[1:1:1]}")"
    echo
    echo "## Allocation call sites per session cycle (put + get + del)"
    echo
    echo "| per cycle | caller -> allocator |"
    echo "|---:|---|"
    join -t $'\t' -1 2 -2 2 -a 2 -e 0 -o 1.1,2.1,0 \
        <(cg_awk sites "$WORK/cg.1:1:1.0" | sort -t $'\t' -k2) <(cg_awk sites "$WORK/cg.1:1:1.N" | sort -t $'\t' -k2) |
        awk -F'\t' -v n="$N" '{ d = ($2 - $1) / n; if (d >= 0.01) printf "| %.2f | `%s` |\n", d, $3 }' | sort -t'|' -k2 -rn
    echo
    echo "## Top self-cost functions inside put, get and del (shape put+get+del, $N cycles + $WARM warm-up)"
    echo
    echo '```'
    callgrind_annotate "$WORK/cg.1:1:1.N" 2>/dev/null | awk '
        /^-+$/ { dashes++; next }
        dashes >= 6 && NF > 0 && shown < 25 { print; shown++ }
    ' | sed -e 's|/root/.cargo/registry/src/index.crates.io-[^/]*/||' -e 's|/rustc/[0-9a-f]*/||'
    echo '```'
    echo
    echo "Inclusive, the largest subtrees:"
    echo
    echo '```'
    callgrind_annotate --inclusive=yes "$WORK/cg.1:1:1.N" 2>/dev/null | awk '
        /^-+$/ { dashes++; next }
        dashes >= 6 && NF > 0 && shown < 30 { print; shown++ }
    ' | sed -e 's|/root/.cargo/registry/src/index.crates.io-[^/]*/||' -e 's|/rustc/[0-9a-f]*/||'
    echo '```'
    echo
    echo "## System calls per call (strace -f -c, same differences of runs)"
    echo
    echo "| syscall | put | get | del |"
    echo "|---|---:|---:|---:|"
    for mix in 1:0:0 1:1:0 1:1:1; do
        join -a 1 -a 2 -e 0 -o 0,1.2,2.2 <(st_counts "$WORK/st.$mix.0" | sort) <(st_counts "$WORK/st.$mix.N" | sort) |
            awk -v m="$mix" -v n="$N" '{ printf "%s %s %.3f\n", m, $1, ($3 - $2) / n }'
    done | awk '
        { v[$2, $1] = $3; names[$2] = 1 }
        END {
            for (s in names) {
                put = v[s, "1:0:0"]; get = v[s, "1:1:0"] - put; del = v[s, "1:1:1"] - v[s, "1:1:0"]
                if (put >= 0.05 || get >= 0.05 || del >= 0.05)
                    printf "| %s | %.3f | %.3f | %.3f |\n", s, put, get, del
            }
        }' | sort
    echo
    echo "One session cycle (put, get, del) as traced, worker thread:"
    echo
    echo '```'
    strace -f -o "$WORK/st.trace" "$BENCH" "${BENCH_ARGS[@]}" --ops 1 >/dev/null
    grep -E 'sendto\(|recvfrom\(|writev\(' "$WORK/st.trace" | tail -n 6 |
        sed -E 's/^[0-9]+ +//; s/"(.{40})[^"]*"/"\1..."/'
    echo '```'
} >"$OUT"

cat "$OUT"
echo "callgrind.sh: wrote $OUT" >&2
