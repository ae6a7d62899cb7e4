#!/usr/bin/env bash
# Stops what up.sh started: the balancer, the nodes (SIGTERM: they finish what they are doing)
# and the PostgreSQL server, whose data folder is removed (the cluster is a throw-away one).
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/cluster/lib.sh
if [ -e "$DATA/haproxy.pid" ]; then
  kill "$(cat "$DATA/haproxy.pid")" 2>/dev/null || true
  rm -f "$DATA/haproxy.pid"
fi
for n in $NODES; do
  if [ -e "$DATA/node-$n.pid" ]; then
    pid="$(cat "$DATA/node-$n.pid")"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$DATA/node-$n.pid"
  fi
done
if [ -e "$DATA/pg-dir" ]; then
  PGDIR="$(cat "$DATA/pg-dir")"
  BIN="$(pg_bin)"
  as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR" "$DATA/pg-dir"
fi
echo "cluster stopped"
