#!/usr/bin/env bash
# Installs the Debian packages a test run needs, as c_tests/deps.txt lists
# them per part, when something is missing:
#
#   c_tests/ensure-deps.sh [PART...]              default: core
#   c_tests/ensure-deps.sh --check PART...        only says what is missing (exit 1 if anything is)
#   c_tests/ensure-deps.sh --packages PART...     prints the Debian packages of those parts
#
# Parts: core (run-tests.sh's default run), demo, netfault, valgrind,
# portable, windows, matrix, matrix-full, fuzz, bench (deps.txt says what
# each is). run-tests.sh asks for core (netfault too as root, valgrind with
# ORS_TESTS_VALGRIND=1), run-demo.sh for demo, .ci/run for every part it runs.
# Installs with apt-get as root, or through `sudo -n` where that works;
# otherwise says what to install and fails. REDIS_SERVER / REDIS_CLI, when
# set, are the binaries looked for instead of redis-server / redis-cli.
set -euo pipefail

PROG=ensure-deps.sh
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIST=$HERE/deps.txt

mode=install
case "${1:-}" in
--check | --packages)
    mode=${1#--}
    shift
    ;;
-*)
    echo "usage: $0 [--check | --packages] [PART...]" >&2
    exit 2
    ;;
esac
parts=("$@")
((${#parts[@]} > 0)) || parts=(core)

# Is this command (python3:MODULE, /PATH) there?
have() {
    case "$1" in
    python3:venv) python3 -c 'import venv, ensurepip' ;;
    python3:*) python3 -c "import ${1#python3:}" ;;
    /*) [[ -e "$1" ]] ;;
    redis-server) command -v "${REDIS_SERVER:-redis-server}" ;;
    redis-cli) command -v "${REDIS_CLI:-redis-cli}" ;;
    *) command -v "$1" ;;
    esac >/dev/null 2>&1
}

known=" "
want=()
missing=()
while read -r line_parts commands packages _; do
    [[ -n "$line_parts" && "$line_parts" != \#* && "$line_parts" != minimal && "$line_parts" != script ]] || continue
    known+="${line_parts//,/ } "
    [[ "$packages" != self && "$packages" != - ]] || continue
    wanted=0
    for part in "${parts[@]}"; do
        [[ ",$line_parts," == *",$part,"* ]] && wanted=1
    done
    ((wanted)) || continue
    IFS=, read -r -a pkgs <<<"$packages"
    want+=("${pkgs[@]}")
    IFS=, read -r -a cmds <<<"$commands"
    for cmd in "${cmds[@]}"; do
        if ! have "$cmd"; then
            missing+=("${pkgs[@]}")
            break
        fi
    done
done <"$LIST"
for part in "${parts[@]}"; do
    [[ "$part" != base && "$part" != rust && "$known" == *" $part "* ]] ||
        { echo "$PROG: error: no part '$part' in $LIST" >&2; exit 2; }
done
# Each package once, in the order of the list.
dedup() { printf '%s\n' "$@" | awk 'NF && !seen[$0]++' | paste -sd ' '; }

if [[ $mode == packages ]]; then
    dedup "${want[@]}"
    exit 0
fi
((${#missing[@]} == 0)) && exit 0
read -r -a missing <<<"$(dedup "${missing[@]}")"
if [[ $mode == check ]]; then
    echo "$PROG: ${parts[*]}: missing ${missing[*]}"
    exit 1
fi

SUDO=()
can_install=1
command -v apt-get >/dev/null 2>&1 || can_install=0
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        can_install=0
    fi
fi
if ((!can_install)); then
    echo "$PROG: error: ${parts[*]} need ${missing[*]}; install them (e.g. apt-get install -y ${missing[*]})" >&2
    exit 1
fi
echo "$PROG: installing ${missing[*]} with apt-get (for ${parts[*]})"
log=$(mktemp)
# A redis-server package may start a service on port 6379: harmless, the tests use their own ports.
if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
    </dev/null >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "$PROG: error: apt-get install ${missing[*]} failed" >&2
    exit 1
fi
rm -f "$log"
# What the packages did not bring (a python3 other than Debian's, say) is still missing.
"$0" --check "${parts[@]}" >&2 || { echo "$PROG: error: still missing after apt-get install" >&2; exit 1; }
