# Sourced by up.sh, send-first-cv.sh and down.sh, from the repository root: where the example
# network's nodes listen, and whether a node that answers there is the one up.sh started.
NET=examples/network
DATA=$NET/data
NODES="ncn emilia lazio"
# The documented ports (partners NCN 8701, EMILIA 8702, LAZIO 8703; local systems 8711-8713),
# or PDD_PORT_BASE+1..+3 and +11..+13 when it is set. up.sh records the base it used, for the
# other scripts.
if [ -z "${PDD_PORT_BASE:-}" ] && [ -e "$DATA/port-base" ]; then
  PDD_PORT_BASE="$(cat "$DATA/port-base")"
fi
BASE="${PDD_PORT_BASE:-8700}"
case "$BASE" in
  ''|*[!0-9]*) echo "PDD_PORT_BASE must be a number (got '$BASE')" >&2; exit 2 ;;
esac
if [ "$BASE" -lt 1 ] || [ "$BASE" -gt 65522 ]; then
  echo "PDD_PORT_BASE must be between 1 and 65522 (got $BASE)" >&2; exit 2
fi

# partner_port NAME / local_port NAME
partner_port() {
  case "$1" in ncn) echo $((BASE + 1)) ;; emilia) echo $((BASE + 2)) ;; lazio) echo $((BASE + 3)) ;; esac
}
local_port() { echo $(($(partner_port "$1") + 10)); }

# Whether node NAME is ours: the process up.sh started is alive and has written, in its data
# directory, the local address it listens on (pdd writes listen.addr once both its listeners are
# bound, so nobody else holds that port).
ours() {
  local pid
  [ -e "$DATA/$1.pid" ] || return 1
  pid="$(cat "$DATA/$1.pid")"
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(cat "$DATA/$1/listen.addr" 2>/dev/null)" = "127.0.0.1:$(local_port "$1")" ]
}
