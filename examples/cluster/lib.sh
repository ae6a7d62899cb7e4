# Sourced by up.sh, send.sh and down.sh, from the repository root: where the example cluster
# listens. The load balancer on 127.0.0.1:8800, the nodes on :8801 and :8802, PostgreSQL on
# :8809; or PDD_PORT_BASE, +1, +2, +9 when it is set (up.sh records the base it used).
C=examples/cluster
DATA=$C/data
if [ -z "${PDD_PORT_BASE:-}" ] && [ -e "$DATA/port-base" ]; then
  PDD_PORT_BASE="$(cat "$DATA/port-base")"
fi
BASE="${PDD_PORT_BASE:-8800}"
case "$BASE" in
  ''|*[!0-9]*) echo "PDD_PORT_BASE must be a number (got '$BASE')" >&2; exit 2 ;;
esac
LB=$BASE
PG=$((BASE + 9))
NODES="1 2"
node_port() { echo $((BASE + $1)); }

# PostgreSQL's server programs: PDD_PG_BIN, else Debian's newest.
pg_bin() {
  if [ -n "${PDD_PG_BIN:-}" ]; then echo "$PDD_PG_BIN"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}
# PostgreSQL refuses to run as root: as root, its programs run as the postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Whether node N is ours: the process up.sh started is alive and says it is node pdd-N.
ours() {
  local pid
  [ -e "$DATA/node-$1.pid" ] || return 1
  pid="$(cat "$DATA/node-$1.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  curl -sf "http://127.0.0.1:$(node_port "$1")/health" | grep -qx "node: pdd-$1"
}
