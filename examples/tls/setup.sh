#!/usr/bin/env bash
# Prepares the two-gateway TLS example: a key and certificate for each Porta di Dominio
# (`pdd certs init`), then each registers the other as a partner with its certificate pinned
# (`pdd partner add`), as two administrations exchanging certificates would.
# Run from the repository root:  bash examples/tls/setup.sh   (runs the pdd on the PATH, or
# PDD=path/to/pdd; the README says how to get it)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
if [ -z "${PDD:-}" ]; then
  command -v pdd >/dev/null || {
    echo "pdd is not on the PATH: cargo install --path . (or PDD=path/to/pdd)" >&2
    exit 2
  }
  PDD=pdd
fi
DIR=./pdd-tls

if [ -e "$DIR/ministero.key" ] || [ -e "$DIR/emilia.key" ]; then
  echo "$DIR already holds keys: remove it to start again" >&2
  exit 1
fi
mkdir -p "$DIR"
$PDD certs init --cn MinisteroLavoro --dir "$DIR" --name ministero
$PDD certs init --cn EMILIA --dir "$DIR" --name emilia

# Each side pins the other's certificate: for TLS (both ways) and for the signatures of its buste.
$PDD --config "$HERE/ministero.toml" partner add --nome EMILIA \
  --cert "$DIR/emilia.crt" --url https://127.0.0.1:8744/pdd/PA
$PDD --config "$HERE/emilia.toml" partner add --nome MinisteroLavoro \
  --cert "$DIR/ministero.crt" --url https://127.0.0.1:8743/pdd/PA

cat <<EOT

Ready. Start both gateways, then send a candidatura from EMILIA's local systems:
  pdd serve --config examples/tls/ministero.toml 2>pdd-tls/ministero.log & MINISTERO=\$!
  pdd serve --config examples/tls/emilia.toml 2>pdd-tls/emilia.log & EMILIA=\$!
  curl -s -H 'Content-Type: text/xml' --data-binary @examples/invio-candidatura-sil.xml \\
    http://127.0.0.1:8742/pdd/PD/ClicLavoro/InvioCandidatura
  kill \$MINISTERO \$EMILIA
EOT
