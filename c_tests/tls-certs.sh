#!/usr/bin/env bash
# Generates the certificates the TLS tests use, with the openssl command line:
#   ca.pem/ca.key            the test CA
#   other-ca.pem             an unrelated CA (a client trusting only it must fail)
#   server.pem/server.key    for 127.0.0.1, ::1 and localhost, signed by the CA
#   client.pem/client.key    a client certificate for mutual TLS
#   wrongname.pem/.key       signed by the CA, but only for redis.other.example
#   expired.pem/.key         signed by the CA, valid in 2020 only
#   cadir/                   a folder with the CA (for tls-cacertdir) and a non-certificate file
#
#   c_tests/tls-certs.sh DIR      (idempotent: does nothing when DIR holds them all)
#
# A certificate per node, for host-name clusters (netfault/netns.sh --tls):
#   c_tests/tls-certs.sh --node-certs DIR PORT NAMES...
# signs, with DIR's CA, node-<port>.pem/.key for each NAMES argument in turn
# (ports PORT, PORT+1, ...), valid for those names alone (a comma-separated
# list: DNS names, no address).
set -euo pipefail

node_certs=0
if [[ "${1:-}" == --node-certs ]]; then
    node_certs=1
    shift
fi
dir=${1:?usage: tls-certs.sh [--node-certs] DIR [PORT NAMES...]}
mkdir -p "$dir"
cd "$dir"
# (a server.pem made before it held ::1 makes them all again)
((node_certs)) || ! [[ -s ca.pem && -s expired.pem && -s cadir/ca.pem ]] ||
    ! openssl x509 -in server.pem -noout -ext subjectAltName 2>/dev/null | grep -q '0:0:0:0:0:0:0:1' || exit 0
command -v openssl >/dev/null 2>&1 || { echo "tls-certs.sh: openssl not found (apt-get install openssl)" >&2; exit 1; }

quiet() { "$@" >/dev/null 2>&1 || { echo "tls-certs.sh: failed: $*" >&2; "$@"; exit 1; }; }

new_ca() { # NAME SUBJECT
    quiet openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3650 -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# issue NAME SUBJECT SAN [openssl x509 date options...]
issue() {
    local name=$1 subject=$2 san=$3
    shift 3
    quiet openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subject"
    printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$name.ext"
    quiet openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$name.pem" \
        -extfile "$name.ext" -days 3650 "$@"
    rm -f "$name.csr" "$name.ext"
}

if ((node_certs)); then
    [[ -s ca.pem && -s ca.key ]] || { echo "tls-certs.sh: no CA in $PWD (run tls-certs.sh DIR first)" >&2; exit 1; }
    port=${2:?usage: tls-certs.sh --node-certs DIR PORT NAMES...}
    shift 2
    for names in "$@"; do
        issue "node-$port" "/CN=${names%%,*}" "DNS:${names//,/,DNS:}"
        port=$((port + 1))
    done
    chmod 600 ./*.key
    exit 0
fi
new_ca ca "/CN=ors-redis test CA"
new_ca other-ca "/CN=some other CA"
issue server "/CN=127.0.0.1" "IP:127.0.0.1,IP:::1,DNS:localhost"
issue client "/CN=ors client" "DNS:ors-client"
issue wrongname "/CN=redis.other.example" "DNS:redis.other.example"

# An expired certificate: openssl x509 cannot back-date, `openssl ca` can.
mkdir -p ca-db
: >ca-db/index.txt
echo 1000 >ca-db/serial
cat >ca-db/ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ca-db
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = leaf
[ any ]
commonName = supplied
[ leaf ]
subjectAltName = IP:127.0.0.1,DNS:localhost
basicConstraints = CA:FALSE
CNF
quiet openssl req -newkey rsa:2048 -nodes -keyout expired.key -out expired.csr -subj "/CN=127.0.0.1"
quiet openssl ca -batch -config ca-db/ca.cnf -in expired.csr -out expired.pem -notext \
    -startdate 20200101000000Z -enddate 20201231000000Z
rm -f expired.csr

mkdir -p cadir
cp ca.pem cadir/ca.pem
echo "not a certificate" >cadir/README
chmod 600 ./*.key
echo "tls-certs.sh: certificates in $PWD"
