#!/usr/bin/env bash
# Proves that the portable_* tests run the portable library: with
# LD_LIBRARY_PATH=DIR the test program must resolve libors_redis.so.<major>
# to DIR (and DIR's link to the portable build), not to target/release.
#
#   c_tests/portable-loaded.sh DIR PROGRAM
set -euo pipefail

dir=$1
program=$2
loaded=$(LD_LIBRARY_PATH=$dir ldd "$program" | awk '$1 ~ /^libors_redis\.so/ {print $3}')
if [[ "$loaded" == "$dir"/libors_redis.so.* ]]; then
    echo "ok - with LD_LIBRARY_PATH=$dir, $(basename "$program") loads $loaded -> $(readlink -f "$loaded")"
    echo "1 passed, 0 failed"
else
    echo "FAIL - with LD_LIBRARY_PATH=$dir, $(basename "$program") loads '$loaded'"
    echo "0 passed, 1 failed"
    exit 1
fi
