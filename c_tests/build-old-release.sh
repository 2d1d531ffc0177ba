#!/usr/bin/env bash
# Builds the library of an older release (default a018743, the last before
# compressed values) for the rolling-upgrade test (c_tests/rolling-upgrade.py):
# its tree from git (`git archive`), built with cargo into a target folder of
# its own, cached between runs. Prints the folder holding its libors_redis.so.
#
#   c_tests/build-old-release.sh [COMMIT]
#
# Needs the commit in this clone's history (a shallow clone may lack it: the
# script says so and exits 3, and run-tests.sh then leaves the test out,
# except under CI, where it fails).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
COMMIT=${1:-a018743}
CARGO=${CARGO:-cargo}
OUT=$REPO/target/old-release
SRC=$OUT/src-$COMMIT
# A debug build: the test is about what the old release reads and writes,
# and it compiles in half the time of a release build.
LIB_DIR=$OUT/target/debug

if ! git -C "$REPO" cat-file -e "$COMMIT^{commit}" 2>/dev/null; then
    echo "build-old-release.sh: commit $COMMIT is not in this clone (a shallow clone?)" >&2
    exit 3
fi
if [[ ! -f "$SRC/.built" || ! -f "$LIB_DIR/libors_redis.so" ]]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    git -C "$REPO" archive "$COMMIT" | tar -x -C "$SRC"
    # Its own target folder: the old tree's crates and this one's never mix.
    CARGO_TARGET_DIR=$OUT/target "$CARGO" build --quiet --lib --manifest-path "$SRC/Cargo.toml" >&2
    touch "$SRC/.built"
fi
echo "$LIB_DIR"
