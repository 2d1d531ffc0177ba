#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (FUZZ_SECONDS, default 30) from the
# committed seed corpus; new inputs go to a scratch folder, not the repo.
# Needs cargo-fuzz (installed when missing); on a stable toolchain the
# sanitizer flags need RUSTC_BOOTSTRAP=1.
#
#   fuzz/run.sh [target...]          (default: every target)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${FUZZ_SECONDS:-30}
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
fi
targets=("$@")
((${#targets[@]} > 0)) || targets=(config session_id reply reply_oracle envelope)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "$scratch/$target"
    echo "=== fuzz $target for ${seconds}s"
    log="$scratch/$target.log"
    # -print_final_stats: the run count shows that it really ran.
    # -malloc_limit_mb: no single allocation above 64 MB, so that a length
    # read from the input (a reply's, say) cannot make us allocate it.
    if ! RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -malloc_limit_mb=64 >"$log" 2>&1; then
        grep -a -v -E '^#[0-9]+' "$log" | tail -n 40 >&2
        echo "fuzz/run.sh: $target failed (a failing input is kept in fuzz/artifacts/$target)" >&2
        exit 1
    fi
    grep -a -E '^(Done|INFO: seed corpus)' "$log"
done
