#!/usr/bin/env bash
# The operator command as the read-only ACL user of docs/operators.md
# (ctest acl_operator_command, on the ACL cluster of acl.conf): doctor,
# capacity, sessions list, count, get and export all work and report no
# refused command; del and import, which the read-only rule leaves out, are
# refused as what they are. doctor with the library's legacy credentials
# (acl.conf's ors-legacy) names what the restore lacks.
#
#   c_tests/acl-operator.sh <path/to/ors-redis>
#
# Environment: ORS_TEST_PORT (the ACL cluster's first port), REDISCLI_AUTH
# (the default user's password, for redis-cli), REDIS_CLI.
set -euo pipefail

bin=$1
port=${ORS_TEST_PORT:-7050}
cli=("${REDIS_CLI:-redis-cli}" -p "$port" -c)
"${cli[@]}" SET "ORS:acl_cli:{s1}" "state-1" EX 600 >/dev/null
trap '"${cli[@]}" DEL "ORS:acl_cli:{s1}" >/dev/null 2>&1 || true' EXIT
export ORS_REDIS_CONFIG="redis-nodes=127.0.0.1:$port;127.0.0.1:$((port + 1)) cluster-name=acl_cli username=ors-operator password=operator-pw"
passed=0
failed=0
# check DESCRIPTION EXPECTED_STATUS PATTERN ARGS...: the status, and PATTERN in stdout+stderr.
check() {
    local what=$1 want=$2 pattern=$3 out rc
    shift 3
    out=$("$bin" "$@" 2>&1) && rc=0 || rc=$?
    if [[ $rc == "$want" && "$out" == *$pattern* && "$out" != *"permission denied"*"+ping"* ]]; then
        echo "ok - $what"
        passed=$((passed + 1))
    else
        echo "FAIL - $what (exit $rc, wanted $want and '$pattern'):"
        sed 's/^/#   /' <<<"$out"
        failed=$((failed + 1))
    fi
}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
documented=$(sed -n 's/^ACL SETUSER ors-operator on >PASSWORD //p' "$here/../docs/operators.md")
configured=$(sed -n 's/^user ors-operator on >operator-pw //p' "$here/acl.conf")
if [[ -n "$documented" && "$documented" == "$configured" ]]; then
    echo "ok - acl.conf's ors-operator has exactly docs/operators.md's rule"
    passed=$((passed + 1))
else
    echo "FAIL - acl.conf's ors-operator rule differs from docs/operators.md's"
    failed=$((failed + 1))
fi
check "doctor as ors-operator: no refused command" 0 "ACL user 'ors-operator'" doctor
if "$bin" doctor 2>&1 | grep -q '^permission '; then
    echo "FAIL - doctor as ors-operator shows a permission row"
    failed=$((failed + 1))
fi
check "capacity as ors-operator: measured with MEMORY USAGE" 0 "with MEMORY USAGE" capacity --sample 10
check "sessions count as ors-operator" 0 "total" sessions count
check "sessions list as ors-operator" 0 "s1" sessions list
check "sessions get as ors-operator" 0 "state-1" sessions get s1 --raw
check "sessions del is refused as what it is" 1 "permission denied: the ACL lacks +unlink" sessions del s1
stream=$(mktemp "${TMPDIR:-/tmp}/acl-operator.XXXXXX")
trap '"${cli[@]}" DEL "ORS:acl_cli:{s1}" >/dev/null 2>&1 || true; rm -f "$stream"' EXIT
check "sessions export as ors-operator" 0 "exported 1 session(s)" sessions export --file "$stream"
check "sessions import is refused as what it is" 1 "permission denied: the ACL lacks +set" sessions import --overwrite --file "$stream"
# doctor with the library's credentials of the rule from before the restore
# (no +cluster|getkeysinslot, no +cluster|info): a restore row says what the
# restore lacks and the ACL line; cluster_state, not seen, does not pass.
legacy=$(ORS_REDIS_CONFIG="redis-nodes=127.0.0.1:$port cluster-name=acl_cli username=ors-legacy password=legacy-pw" \
    "$bin" doctor 2>&1) || true
if grep -q '^restore .*WARN.*ACL SETUSER ors-legacy +cluster|getkeysinslot' <<<"$legacy" &&
    grep -q '^cluster_state .*WARN.*not checked' <<<"$legacy"; then
    echo "ok - doctor as ors-legacy names the restore's missing permission; cluster_state not seen is not a pass"
    passed=$((passed + 1))
else
    echo "FAIL - doctor as ors-legacy: no restore row with the ACL line, or cluster_state passed unseen:"
    sed 's/^/#   /' <<<"$legacy"
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed"
((failed == 0))
