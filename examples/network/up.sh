#!/usr/bin/env bash
# Starts a ClicLavoro network on this machine, in the background: the NCN on 127.0.0.1:8701,
# EMILIA on :8702 and LAZIO on :8703 (mutual TLS, signed buste), each with a plain loopback
# listener for its local systems, read API and admin on :8711, :8712, :8713. Keys and
# certificates are made on first use (examples/network/data/pki); stores and logs go to
# examples/network/data/. Stop them with down.sh.
#   bash examples/network/up.sh        (PDD=path/to/pdd to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/../.."
NET=examples/network
DATA=$NET/data
PKI=$DATA/pki
if [ -z "${PDD:-}" ]; then
  echo "building pdd (cargo build --release)…"
  cargo build --release --quiet
  PDD=target/release/pdd
fi
mkdir -p "$PKI"
for n in ncn:MinisteroLavoro emilia:EMILIA lazio:LAZIO; do
  name=${n%%:*}
  if [ ! -e "$PKI/$name.key" ]; then
    "$PDD" certs init --cn "${n#*:}" --dir "$PKI" --name "$name" >/dev/null
    echo "made a key and certificate for ${n#*:} in $PKI"
  fi
done
for n in ncn:8711 emilia:8712 lazio:8713; do
  name=${n%%:*}
  if [ -e "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
    echo "$name is already running (pid $(cat "$DATA/$name.pid"))"
    continue
  fi
  "$PDD" serve --config "$NET/$name.toml" >"$DATA/$name.log" 2>&1 &
  echo $! >"$DATA/$name.pid"
done
for n in ncn:8711 emilia:8712 lazio:8713; do
  name=${n%%:*}
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:${n#*:}/health" >/dev/null && break
    if ! kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
      echo "$name did not start; its log ($DATA/$name.log):" >&2
      tail -20 "$DATA/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:${n#*:}/health" >/dev/null || { echo "$name does not answer on :${n#*:}" >&2; exit 1; }
done
cat <<EOT
ClicLavoro network up:
  NCN     https://127.0.0.1:8701/pdd/PA   local http://127.0.0.1:8711   log $DATA/ncn.log
  EMILIA  https://127.0.0.1:8702/pdd/PA   local http://127.0.0.1:8712   log $DATA/emilia.log
  LAZIO   https://127.0.0.1:8703/pdd/PA   local http://127.0.0.1:8713   log $DATA/lazio.log
Next: bash $NET/send-first-cv.sh    Stop: bash $NET/down.sh
EOT
