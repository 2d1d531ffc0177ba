# checks.sh - the check counters of the shell test scripts (sourced). Each
# check prints "ok - ..." or "FAIL - ..."; the script ends with
# `echo "$passed passed, $failed failed"`.
#   ok TEXT | fail TEXT | check TEXT COMMAND... | quiet COMMAND...
# shellcheck shell=bash
passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
fail() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
# Runs a command quietly; its output is shown only when it fails.
quiet() {
    local log rc=0
    log=$(mktemp)
    "$@" >"$log" 2>&1 || rc=$?
    ((rc == 0)) || sed 's/^/#   /' "$log"
    rm -f "$log"
    return "$rc"
}
