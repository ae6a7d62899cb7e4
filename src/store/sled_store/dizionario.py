#!/usr/bin/env python3
"""Writes dizionario-1.bin, the zstd raw-content dictionary the sled store compresses its records
against (codec.rs: values that begin with the marker of dictionary 1).

It holds the standard's vocabulary only: the JSON keys of pdd's records, the element names of the
ClicLavoro moduli (from xsd/, raw and escaped as a Body carries them), the network's soggetti and
the busta of a request and of an answer with empty values. No value of any sample message.

The file is part of the store's format: a store written with it reads only with the same bytes
(a test pins its digest). A different dictionary needs a new marker and a new file.

Run from the repository's root: python3 src/store/sled_store/dizionario.py
"""
import re

OUT = "src/store/sled_store/dizionario-1.bin"


def elementi(xsd):
    testo = open(f"xsd/{xsd}", encoding="utf-8").read()
    visti = []
    for nome in re.findall(r'<xs:element[^>]*name="([^"]+)"', testo):
        if nome not in visti:
            visti.append(nome)
    return visti


SOGGETTI = [
    "MinisteroLavoro", "INPS", "PIEMONTE", "VALLEDAOSTA", "LOMBARDIA", "BOLZANO", "TRENTO",
    "VENETO", "FRIULI", "LIGURIA", "EMILIA", "TOSCANA", "UMBRIA", "MARCHE", "LAZIO", "ABRUZZO",
    "MOLISE", "CAMPANIA", "PUGLIA", "BASILICATA", "CALABRIA", "SICILIA", "SARDEGNA",
]
OPERAZIONI = [
    ("invioMessaggio", "MessaggioXML", "Messaggio"),
    ("invioPercettore", "CandidaturaXML", "Candidatura"),
    ("invioVacancy", "VacancyXML", "Vacancy"),
    ("invioCandidatura", "CandidaturaXML", "Candidatura"),
]
TYPES = "http://servizi.lavoro.gov.it/cliclavoro/types"

parti = []
# The records' JSON: a stored modulo with its scheda, an exchange's metadata.
parti.append(
    '{"kind":"messaggio","code":"","versione":"2.0","stato":"attivo","received_at":"",'
    '"updated_at":"","request_id":"","mittente":"SPC/","scadenza":"","precedente":null,'
    '"attuale":null,"xml":"<?xml version=\\"1.0\\" encoding=\\"UTF-8\\"?>\\n","destinazioni":[],'
    '"titolare":"","scheda":{"codice":"","tipo":"vacancy","pubblico":{},'
    '"contatto":{"tramite":"intermediario"},"intermediato":true,"professioni":[],"comune":"",'
    '"provincia":"","regione":"","testo":""}}'
)
# Each modulo's elements: as JSON keys (the published fields), raw (the stored document) and
# escaped (the request's Body).
for xsd, ns in [
    ("cliclavoro-messaggio-rev038.xsd", "http://servizi.lavoro.gov.it/messaggio"),
    ("cliclavoro-vacancy-2.0.xsd", "http://servizi.lavoro.gov.it/vacancy"),
    ("cliclavoro-candidatura-2.0.xsd", "http://servizi.lavoro.gov.it/candidatura"),
]:
    el = elementi(xsd)
    parti.append("".join(f'"{e.lower()}":"' for e in el))
    parti.append(
        f'<cl:{el[0]} xmlns:cl=\\"{ns}\\">' + "".join(f"<cl:{e}></cl:{e}>" for e in el[1:])
    )
    parti.append(
        f'&lt;cl:{el[0]} xmlns:cl="{ns}"&gt;'
        + "".join(f"&lt;cl:{e}&gt;&lt;/cl:{e}&gt;" for e in el[1:])
    )
parti.append(" ".join(f"SPC/{s} {s}_{s}SPCoopIT_" for s in SOGGETTI))
parti.append(
    '{"seq":,"direction":"in","received_at":"","answered_at":"","request_id":"",'
    '"response_id":"","mittente":"SPC/","destinatario":"SPC/","servizio":"SPC/ClicLavoro",'
    '"azione":"","profilo":"EGOV_IT_ServizioSincrono","outcome":"ok","http_status":200,'
    '"eccezioni":[],"note":null,"peer":"CN=,O=,C=IT"}'
)
# The busta of a request and of an answer, under both usual prefixes of the envelope, with the
# operations' elements.
for env in ["SOAP_ENV", "soapenv"]:
    corpo = "".join(
        f'<types:risposta_{op} xmlns:types="{TYPES}"><types:Tipo_Risposta>OK</types:Tipo_Risposta>'
        f"<types:Descr_Esito>{nome} ricevuta correttamente (codice </types:Descr_Esito>"
        f"</types:risposta_{op}>"
        f'<types:{op} xmlns:types="{TYPES}"><types:{param}>'
        f'&lt;?xml version="1.0" encoding="UTF-8"?&gt;\n</types:{param}></types:{op}>'
        for op, param, nome in OPERAZIONI
    )
    parti.append(
        f'<{env}:Envelope xmlns:{env}="http://schemas.xmlsoap.org/soap/envelope/"><{env}:Header>'
        '<eGov_IT:Intestazione xmlns:eGov_IT="http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/" '
        f'{env}:actor="http://www.cnipa.it/eGov_it/portadominio" {env}:mustUnderstand="1">'
        "<eGov_IT:IntestazioneMessaggio><eGov_IT:Mittente>"
        '<eGov_IT:IdentificativoParte tipo="SPC"></eGov_IT:IdentificativoParte></eGov_IT:Mittente>'
        '<eGov_IT:Destinatario><eGov_IT:IdentificativoParte tipo="SPC"></eGov_IT:IdentificativoParte>'
        "</eGov_IT:Destinatario><eGov_IT:ProfiloCollaborazione>EGOV_IT_ServizioSincrono"
        '</eGov_IT:ProfiloCollaborazione><eGov_IT:Servizio tipo="SPC">ClicLavoro</eGov_IT:Servizio>'
        "<eGov_IT:Azione></eGov_IT:Azione><eGov_IT:Messaggio><eGov_IT:Identificatore>"
        '</eGov_IT:Identificatore><eGov_IT:OraRegistrazione tempo="EGOV_IT_SPC">'
        "</eGov_IT:OraRegistrazione><eGov_IT:RiferimentoMessaggio></eGov_IT:RiferimentoMessaggio>"
        '</eGov_IT:Messaggio><eGov_IT:ProfiloTrasmissione inoltro="EGOV_IT_ALPIUUNAVOLTA" '
        'confermaRicezione="false"/></eGov_IT:IntestazioneMessaggio><eGov_IT:ListaTrasmissioni>'
        '<eGov_IT:Trasmissione><eGov_IT:Origine><eGov_IT:IdentificativoParte tipo="SPC">'
        "</eGov_IT:IdentificativoParte></eGov_IT:Origine><eGov_IT:Destinazione>"
        '<eGov_IT:IdentificativoParte tipo="SPC"></eGov_IT:IdentificativoParte>'
        '</eGov_IT:Destinazione><eGov_IT:OraRegistrazione tempo="EGOV_IT_SPC">'
        "</eGov_IT:OraRegistrazione></eGov_IT:Trasmissione></eGov_IT:ListaTrasmissioni>"
        f"</eGov_IT:Intestazione></{env}:Header><{env}:Body>{corpo}</{env}:Body></{env}:Envelope>"
    )

with open(OUT, "wb") as f:
    f.write("\n".join(parti).encode("utf-8"))
