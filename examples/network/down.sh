#!/usr/bin/env bash
# Stops the example network started by up.sh (SIGTERM: each node finishes its exchanges and
# flushes its store). Data, keys and logs stay in examples/network/data/ (remove it to start over).
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/network/lib.sh
for name in $NODES; do
  pidfile="$DATA/$name.pid"
  [ -e "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "$name stopped"
  fi
  rm -f "$pidfile"
done
