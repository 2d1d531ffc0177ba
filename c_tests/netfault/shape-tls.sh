#!/usr/bin/env bash
# The IPv6 shape over TLS (ctest netshape_ipv6_tls), run by
# `netns.sh --ipv6 --no-cluster`: makes the test certificates (tls-certs.sh:
# the server's holds IP ::1), starts the ::1 cluster with TLS on every port
# (cluster.sh, ORS_CLUSTER_TLS_DIR) and runs nf_shape against it.
#
#   c_tests/netfault/shape-tls.sh NF_SHAPE ORS_REDIS_COMMAND
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
(($# == 2)) || { echo "usage: $0 NF_SHAPE ORS_REDIS_COMMAND" >&2; exit 2; }
certs=$ORS_CLUSTER_DIR/certs
mkdir -p "$ORS_CLUSTER_DIR"
"$HERE/../tls-certs.sh" "$certs" >/dev/null
tls_args="--tls --cacert $certs/ca.pem"
export ORS_CLUSTER_TLS_DIR=$certs ORS_REDIS_CLI_ARGS=$tls_args
"$ORS_CLUSTER_SH" start
# The program's own redis-cli (harness.h, chaos.h) runs through the shell.
REDIS_CLI="${REDIS_CLI:-redis-cli} $tls_args" "$1" ipv6 "$2" "$certs/ca.pem"
