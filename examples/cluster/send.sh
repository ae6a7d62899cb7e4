#!/usr/bin/env bash
# Sends N buste (default 10) to the cluster through the balancer, as a partner would, and says
# which node answered each (the node number leads the serial of the answer's Identificatore);
# then sends the first again, to show that the duplicate filter is the cluster's.
#   bash examples/cluster/send.sh [N]
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/cluster/lib.sh
up=0
for n in $NODES; do
  if ours "$n"; then up=$((up + 1)); else echo "node $n is down: the others serve" >&2; fi
done
[ "$up" -gt 0 ] || { echo "no node is up: run up.sh first" >&2; exit 1; }
N="${1:-10}"
ora="$(date +%Y-%m-%dT%H:%M:%S)"
minuto="$(date +%Y-%m-%d_%H:%M)"
first=""
for i in $(seq 1 "$N"); do
  id="EMILIA_EMILIASPCoopIT_$(printf '%07d' $(( (RANDOM * 32768 + RANDOM) % 9000000 + 1000000 )))_$minuto"
  body="$(sed -e "s|<eGov_IT:Identificatore>[^<]*<|<eGov_IT:Identificatore>$id<|" \
              -e "s|<eGov_IT:OraRegistrazione tempo=\"EGOV_IT_SPC\">[^<]*<|<eGov_IT:OraRegistrazione tempo=\"EGOV_IT_SPC\">$ora<|" \
              examples/richiesta-candidatura.xml)"
  [ -n "$first" ] || first="$body"
  answer="$(printf '%s' "$body" | curl -sS -H 'Content-Type: text/xml; charset=utf-8' --data-binary @- "http://127.0.0.1:$LB/pdd/PA")"
  risposta="$(printf '%s' "$answer" | sed -n 's|.*<eGov_IT:Identificatore>\([^<]*\)</eGov_IT:Identificatore>.*|\1|p')"
  serial="$(printf '%s' "$risposta" | cut -d_ -f3)"
  echo "$id -> answered by node ${serial:0:2} ($risposta)"
done
echo "the first busta again, through the balancer (another node, perhaps):"
printf '%s' "$first" | curl -sS -H 'Content-Type: text/xml; charset=utf-8' --data-binary @- "http://127.0.0.1:$LB/pdd/PA" \
  | grep -o 'codiceEccezione="EGOV_IT_110"[^/]*' || { echo "not refused as a duplicate" >&2; exit 1; }
