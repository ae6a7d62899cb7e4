#!/usr/bin/env bash
# Starts a throw-away cluster on this machine, in the background: a private PostgreSQL (its own
# data folder in a temp dir, port 8809), two pdd nodes sharing it (node numbers 1 and 2, on
# 127.0.0.1:8801 and :8802) and HAProxy in front on 127.0.0.1:8800, health-checking /health.
# Send through the balancer with send.sh; stop everything with down.sh.
#   bash examples/cluster/up.sh            (PDD=path/to/pdd to use a built binary)
#   PDD_PORT_BASE=9800 bash examples/cluster/up.sh   (ports 9800-9802 and 9809 instead)
# Needs PostgreSQL's server programs and HAProxy (Debian: apt-get install postgresql haproxy).
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/cluster/lib.sh
BIN="$(pg_bin)"
[ -n "$BIN" ] && [ -x "$BIN/initdb" ] || { echo "PostgreSQL's server programs are not installed (Debian: apt-get install postgresql; or set PDD_PG_BIN)" >&2; exit 2; }
command -v haproxy >/dev/null || { echo "haproxy is not installed (Debian: apt-get install haproxy)" >&2; exit 2; }
if [ -e "$DATA/pg-dir" ]; then echo "a cluster is up (or was not stopped): run down.sh first" >&2; exit 1; fi
if [ -z "${PDD:-}" ]; then
  echo "building pdd (cargo build --release)…"
  cargo build --release --quiet
  PDD=target/release/pdd
fi
for p in $LB $PG $(node_port 1) $(node_port 2); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "127.0.0.1:$p is taken by another process: set PDD_PORT_BASE" >&2; exit 1
  fi
done
mkdir -p "$DATA"
echo "$BASE" >"$DATA/port-base"

# PostgreSQL: a data folder of its own, owned by the server's user.
PGDIR="$(mktemp -d "${TMPDIR:-/tmp}/pdd-cluster-pg.XXXXXX")"
echo "$PGDIR" >"$DATA/pg-dir"
chmod 755 "$PGDIR"
[ "$(id -u)" = 0 ] && chown postgres: "$PGDIR"
as_pg "$BIN/initdb" -D "$PGDIR/data" -U pdd --auth=trust --encoding=UTF8 --locale=C >/dev/null
as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w \
  -o "-p $PG -c listen_addresses=127.0.0.1 -k $PGDIR" start >/dev/null
URL="postgres://pdd@127.0.0.1:$PG/postgres"
echo "PostgreSQL on 127.0.0.1:$PG ($PGDIR)"

# The nodes: one configuration each, differing by name, number and port.
for n in $NODES; do
  cat >"$DATA/node-$n.toml" <<TOML
# Written by examples/cluster/up.sh: node $n of a cluster on one PostgreSQL database.
listen = "127.0.0.1:$(node_port "$n")"
data = "$DATA/node-$n"

[store]
engine = "postgres"
url = "$URL"
pool = 8

[cluster]
node = "pdd-$n"
numero = $n
TOML
  nohup "$PDD" --config "$DATA/node-$n.toml" serve >"$DATA/node-$n.log" 2>&1 &
  echo $! >"$DATA/node-$n.pid"
done
for n in $NODES; do
  for _ in $(seq 1 100); do ours "$n" && break; sleep 0.1; done
  ours "$n" || { echo "node $n did not start: see $DATA/node-$n.log" >&2; tail -5 "$DATA/node-$n.log" >&2; exit 1; }
  echo "node pdd-$n (number $n) on http://127.0.0.1:$(node_port "$n")"
done

# The balancer: round robin over the nodes that answer /health.
cat >"$DATA/haproxy.cfg" <<CFG
global
  maxconn 1024
defaults
  mode http
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  option redispatch
  retries 2
frontend pdd
  bind 127.0.0.1:$LB
  default_backend nodes
backend nodes
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
  server pdd-1 127.0.0.1:$(node_port 1) check inter 1s fall 2 rise 2
  server pdd-2 127.0.0.1:$(node_port 2) check inter 1s fall 2 rise 2
CFG
haproxy -f "$DATA/haproxy.cfg" -D -p "$DATA/haproxy.pid"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$LB/health" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$LB/health" >/dev/null || { echo "HAProxy does not answer on 127.0.0.1:$LB" >&2; exit 1; }
echo "HAProxy on http://127.0.0.1:$LB: send with bash examples/cluster/send.sh; stop with bash examples/cluster/down.sh"
