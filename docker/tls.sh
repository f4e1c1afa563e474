#!/usr/bin/env bash
# A local certificate authority and one certificate for the given host names, for trying the production
# shape on one machine (a real deployment uses the certificates of the operator's CA or ACME instead).
#   docker/tls.sh DIR HOST...      writes DIR/ca.pem, DIR/ca.key, DIR/server.pem, DIR/server.key (kept if there)
# Browsers trust DIR/ca.pem once it is imported; tests/prod/ trusts the server key's SPKI in Chromium.
set -euo pipefail
dir=$1; shift
mkdir -p "$dir"; chmod 700 "$dir"; cd "$dir"
if [ ! -f ca.pem ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=eGovSAD local CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout ca.key -out ca.pem 2>/dev/null
fi
san=$(printf 'DNS:%s,' "$@"); san=${san%,}
if [ ! -f server.pem ] || ! openssl x509 -in server.pem -noout -ext subjectAltName 2>/dev/null | grep -q "DNS:$1"; then
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$1" -keyout server.key -out server.csr 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -out server.pem \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san") 2>/dev/null
  cat ca.pem >> server.pem   # the chain: leaf, then the CA
  rm -f server.csr
fi
chmod 600 ca.key server.key; chmod 644 ca.pem server.pem
