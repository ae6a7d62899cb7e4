#!/usr/bin/env bash
# EMILIA's local system publishes a national-scope Candidatura (ambito 02) through EMILIA's porta
# delegata; the NCN forwards it to LAZIO, whose read API then lists it, anonymised. With the
# argument 03 the CV is of European scope: the NCN also makes a Europass CV of it for EURES
# (pdd --config examples/network/ncn.toml eures export DIR writes it out).
# Run after up.sh:  bash examples/network/send-first-cv.sh [02|03]   (on the ports up.sh used)
set -euo pipefail
cd "$(dirname "$0")/../.."
. examples/network/lib.sh
ambito="${1:-02}"
case "$ambito" in
  02) scope="ambito nazionale" ;;
  03) scope="ambito europeo" ;;
  *) echo "usage: $0 [02|03]  (the CV's ambito di diffusione: 02 national, 03 European)" >&2; exit 2 ;;
esac
for name in $NODES; do
  ours "$name" || { echo "$name is not up on 127.0.0.1:$(local_port "$name"): run up.sh first" >&2; exit 1; }
done
EMILIA="http://127.0.0.1:$(local_port emilia)"
LAZIO="http://127.0.0.1:$(local_port lazio)"
# A fresh 25-digit code, today's dates: the sample CV of examples/moduli, of the scope asked.
code="$(date +%Y%m%d%H%M%S)$(printf '%011d' $((RANDOM * 32768 + RANDOM)))"
now="$(date +%Y-%m-%dT%H:%M:%S)"
until="$(date -d '+40 days' +%Y-%m-%d 2>/dev/null || date -v+40d +%Y-%m-%d)"
modulo="$(sed -e "s|<cl:codicecandidatura>[^<]*<|<cl:codicecandidatura>$code<|" \
              -e "s|<cl:ambitodiffusione>[^<]*<|<cl:ambitodiffusione>$ambito<|" \
              -e "s|<cl:datainserimento>[^<]*<|<cl:datainserimento>$now<|" \
              -e "s|<cl:datascadenza>[^<]*<|<cl:datascadenza>$until<|" \
              examples/moduli/candidatura-rev038.xml)"
escaped="$(printf '%s' "$modulo" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g')"
request="<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body><types:invioCandidatura xmlns:types=\"http://servizi.lavoro.gov.it/cliclavoro/types\"><types:CandidaturaXML>$escaped</types:CandidaturaXML></types:invioCandidatura></soapenv:Body></soapenv:Envelope>"
echo "EMILIA's SIL sends Candidatura $code ($scope) to $EMILIA/pdd/PD/ClicLavoro/InvioCandidatura"
answer="$(printf '%s' "$request" | curl -sS -H 'Content-Type: text/xml; charset=utf-8' --data-binary @- \
  "$EMILIA/pdd/PD/ClicLavoro/InvioCandidatura")"
esito="$(printf '%s' "$answer" | sed -n 's|.*<types:Tipo_Risposta>\([^<]*\)</types:Tipo_Risposta><types:Descr_Esito>\([^<]*\)<.*|\1: \2|p')"
echo "NCN answered ${esito:-$answer}"
case "$esito" in OK*) ;; *) exit 1 ;; esac
for _ in $(seq 1 100); do
  if curl -sf "$LAZIO/api/candidature" | grep -q "$code"; then
    echo "LAZIO publishes it (anonymous view): curl -s $LAZIO/api/candidature"
    curl -sf "$LAZIO/api/candidature"
    echo
    exit 0
  fi
  sleep 0.1
done
echo "LAZIO does not list $code yet: see 'pdd --config $DATA/conf/ncn.toml outbox list'" >&2
exit 1
