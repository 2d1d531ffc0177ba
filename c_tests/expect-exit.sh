#!/usr/bin/env bash
# Runs a command that must fail in a given way: passes only when it exits
# with CODE and its output (stdout and stderr) matches the extended regular
# expression REGEX. The suite uses it to prove that valgrind and the
# sanitizers, with the options the tests run under, fail a program that has
# a memory error (c_tests/memcheck_canary.c).
#
#   c_tests/expect-exit.sh CODE REGEX -- COMMAND [ARGS...]
set -uo pipefail

if (($# < 4)) || [[ "$3" != -- ]]; then
    echo "usage: $0 CODE REGEX -- COMMAND [ARGS...]" >&2
    exit 2
fi
want=$1 regex=$2
shift 3
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out" | tail -n 25
if ((rc != want)); then
    echo "expect-exit.sh: '$1' exited with $rc, expected $want" >&2
    exit 1
fi
if ! grep -Eq -- "$regex" <<<"$out"; then
    echo "expect-exit.sh: the output of '$1' does not match /$regex/" >&2
    exit 1
fi
echo "expect-exit.sh: exit code $want and /$regex/, as expected"
