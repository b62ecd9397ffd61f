#!/usr/bin/env bash
# Test certificates for integration.tls, made with openssl in DIR:
#   ca.pem/ca.key         the test CA
#   server.pem/.key       signed by it, CN/SAN localhost and 127.0.0.1 (the good one)
#   wronghost.pem/.key    signed by it, SAN wrong.example only (host name mismatch)
#   other-ca.pem          a second CA that signed nothing here (wrong CA)
#   client.pem/.key       signed by the test CA, CN pgscribe_worker (a client certificate)
# usage: tests/integration/tls_certs.sh DIR
set -euo pipefail
D=${1:?usage: tls_certs.sh DIR}
mkdir -p "$D"
cd "$D"
ossl() { openssl "$@" >/dev/null 2>>openssl.log; }

make_ca() { # NAME CN
    ossl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.pem" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign"
}

make_leaf() { # NAME CN SAN EKU
    ossl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$2" -keyout "$1.key" -out "$1.csr"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s\n' \
        "$4" "${3:+subjectAltName=$3}" >"$1.ext"
    ossl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -sha256 \
        -extfile "$1.ext" -out "$1.pem"
    rm -f "$1.csr" "$1.ext"
    chmod 600 "$1.key"
}

make_ca ca "pgscribe test CA"
make_ca other-ca "pgscribe other CA"
make_leaf server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
make_leaf wronghost wrong.example "DNS:wrong.example" serverAuth
make_leaf client pgscribe_worker "" clientAuth
rm -f other-ca.key
openssl verify -CAfile ca.pem server.pem wronghost.pem client.pem >/dev/null
