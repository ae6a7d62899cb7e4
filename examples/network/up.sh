#!/usr/bin/env bash
# Starts a ClicLavoro network on this machine, in the background: the NCN on 127.0.0.1:8701,
# EMILIA on :8702 and LAZIO on :8703 (mutual TLS, signed buste), each with a plain loopback
# listener for its local systems, read API and admin on :8711, :8712, :8713. Keys and
# certificates are made on first use (examples/network/data/pki); stores and logs go to
# examples/network/data/. Stop them with down.sh.
#   bash examples/network/up.sh        (PDD=path/to/pdd to use a built binary)
#   PDD_PORT_BASE=9000 bash examples/network/up.sh    (ports 9001-9003 and 9011-9013 instead)
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/network/lib.sh
PKI=$DATA/pki
if [ -z "${PDD:-}" ]; then
  echo "building pdd (cargo build --release)…"
  cargo build --release --quiet
  PDD=target/release/pdd
fi
mkdir -p "$PKI" "$DATA/conf"
for n in ncn:MinisteroLavoro emilia:EMILIA lazio:LAZIO; do
  name=${n%%:*}
  if [ ! -e "$PKI/$name.key" ]; then
    "$PDD" certs init --cn "${n#*:}" --dir "$PKI" --name "$name" >/dev/null
    echo "made a key and certificate for ${n#*:} in $PKI"
  fi
done
# Each node's configuration with the ports asked for (the documented ones by default): each
# documented port becomes a mark, then each mark its port, so that no port is moved twice.
marks=()
ports=()
for name in $NODES; do
  for kind in partner_port local_port; do
    port="$("$kind" "$name")"
    marks+=(-e "s/127\.0\.0\.1:$((port - BASE + 8700))\([^0-9]\)/127.0.0.1:@$name-$kind@\1/g")
    ports+=(-e "s/@$name-$kind@/$port/g")
  done
done
for name in $NODES; do
  sed "${marks[@]}" "$NET/$name.toml" | sed "${ports[@]}" >"$DATA/conf/$name.toml"
done
echo "$BASE" >"$DATA/port-base"
for name in $NODES; do
  if [ -e "$DATA/$name.pid" ] && kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
    if ours "$name"; then
      echo "$name is already running (pid $(cat "$DATA/$name.pid"))"
      continue
    fi
    echo "$name is running (pid $(cat "$DATA/$name.pid")) but not on 127.0.0.1:$(local_port "$name"): stop it with down.sh" >&2
    exit 1
  fi
  # Written again by the node once it listens: what tells it from another process on its port.
  rm -f "$DATA/$name/listen.addr"
  "$PDD" serve --config "$DATA/conf/$name.toml" >"$DATA/$name.log" 2>&1 &
  echo $! >"$DATA/$name.pid"
done
for name in $NODES; do
  health="http://127.0.0.1:$(local_port "$name")/health"
  for _ in $(seq 1 100); do
    ours "$name" && curl -sf "$health" >/dev/null && break
    if ! kill -0 "$(cat "$DATA/$name.pid")" 2>/dev/null; then
      echo "$name did not start; its log ($DATA/$name.log):" >&2
      tail -20 "$DATA/$name.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  if ! ours "$name"; then
    echo "$name (pid $(cat "$DATA/$name.pid")) does not listen on 127.0.0.1:$(local_port "$name"); its log: $DATA/$name.log" >&2
    exit 1
  fi
  curl -sf "$health" >/dev/null || { echo "$name does not answer on $health" >&2; exit 1; }
done
cat <<EOT
ClicLavoro network up:
  NCN     https://127.0.0.1:$(partner_port ncn)/pdd/PA   local http://127.0.0.1:$(local_port ncn)   log $DATA/ncn.log
  EMILIA  https://127.0.0.1:$(partner_port emilia)/pdd/PA   local http://127.0.0.1:$(local_port emilia)   log $DATA/emilia.log
  LAZIO   https://127.0.0.1:$(partner_port lazio)/pdd/PA   local http://127.0.0.1:$(local_port lazio)   log $DATA/lazio.log
Next: bash $NET/send-first-cv.sh    Stop: bash $NET/down.sh
EOT
