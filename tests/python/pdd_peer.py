"""A partner's side of a ClicLavoro exchange, written with zeep and python-xmlsec, so that the
tests in tests/python_peers.rs can check pdd against a second, independent SOAP/WS-Security stack.

    pdd_peer.py verify MSG PEER_CERT
        Checks a message pdd signed: with zeep's own verify_envelope and with FirmaBusta.verify
        (python-xmlsec, plus what pdd requires: Body, busta and Timestamp covered, fresh, the
        token is the partner's certificate). Prints "OK" or "FAIL <reason>"; exit 0 / 1.
    pdd_peer.py sign MSG KEY CERT OUT
        Signs a message the way a partner's zeep client would (for pdd to verify).
    pdd_peer.py call WSDL URL KEY CERT CA PEER_CERT MODULO IDENTIFICATORE ORA
        Calls InvioCandidatura through the WSDL over HTTPS with a client certificate, with a busta
        header and a signature; verifies the signed answer; prints a JSON summary.
    pdd_peer.py call-stock (same arguments)
        The same with zeep's own BinarySignature (RSA-SHA256), which signs the Body only.
    pdd_peer.py call-pd WSDL URL CANDIDATURA VACANCY
        A local system's client: lists the WSDL's services and their ports as zeep sees them,
        then calls InvioCandidatura and InvioVacancy through one service proxy of the porta
        delegata's binding at URL (plain HTTP, no busta); prints a JSON summary.

Exit status 2 means a usage or environment problem, not a verdict.
"""
import base64
import datetime
import json
import sys

import xmlsec
from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EGOV = "http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
X509V3 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
B64 = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
WSU_ID = "{%s}Id" % WSU


class Rifiutata(Exception):
    """A signature pdd's peer must not accept."""


def _der(cert_pem_path):
    pem = open(cert_pem_path, "rb").read()
    body = b"".join(l for l in pem.splitlines() if l and not l.startswith(b"-----"))
    return base64.b64decode(body)


def _utc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class FirmaBusta:
    """A zeep `wsse` object (apply/verify) signing what SPCoop partners sign: the SOAP Body, the
    busta's IntestazioneMessaggio and a wsu:Timestamp, exclusive C14N, RSA-SHA256, with the
    certificate in a wsse:BinarySecurityToken. verify() trusts only the partner's certificate."""

    def __init__(self, key, cert, peer_cert, ttl=300):
        self.key, self.cert, self.peer_cert, self.ttl = key, cert, peer_cert, ttl

    def apply(self, envelope, headers):
        header = envelope.find("{%s}Header" % SOAP)
        if header is None:
            header = etree.Element("{%s}Header" % SOAP)
            envelope.insert(0, header)
        sec = etree.SubElement(header, "{%s}Security" % WSSE, nsmap={"wsse": WSSE, "wsu": WSU})
        sec.set("{%s}mustUnderstand" % SOAP, "1")
        now = datetime.datetime.now(datetime.timezone.utc)
        ts = etree.SubElement(sec, "{%s}Timestamp" % WSU, {WSU_ID: "TS-1"})
        etree.SubElement(ts, "{%s}Created" % WSU).text = _utc(now)
        etree.SubElement(ts, "{%s}Expires" % WSU).text = _utc(now + datetime.timedelta(seconds=self.ttl))
        bst = etree.SubElement(sec, "{%s}BinarySecurityToken" % WSSE,
                               {WSU_ID: "X509-1", "ValueType": X509V3, "EncodingType": B64})
        bst.text = base64.b64encode(_der(self.cert)).decode()
        sig = xmlsec.template.create(envelope, xmlsec.Transform.EXCL_C14N,
                                     xmlsec.Transform.RSA_SHA256, ns="ds")
        sec.append(sig)
        ctx = xmlsec.SignatureContext()
        targets = [(envelope.find("{%s}Body" % SOAP), "Body-1"),
                   (envelope.find(".//{%s}IntestazioneMessaggio" % EGOV), "Busta-1"),
                   (ts, "TS-1")]
        for el, ident in targets:
            if el is None:
                raise ValueError("no Body or no busta e-Gov to sign")
            el.set(WSU_ID, el.get(WSU_ID) or ident)
            ctx.register_id(el, "Id", WSU)
            ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256, uri="#" + el.get(WSU_ID))
            xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
        info = xmlsec.template.ensure_key_info(sig)
        token_ref = etree.SubElement(info, "{%s}SecurityTokenReference" % WSSE)
        etree.SubElement(token_ref, "{%s}Reference" % WSSE, URI="#X509-1", ValueType=X509V3)
        ctx.key = xmlsec.Key.from_file(self.key, xmlsec.KeyFormat.PEM)
        ctx.sign(sig)
        return envelope, headers

    def verify(self, envelope):
        sec = envelope.find("{%s}Header/{%s}Security" % (SOAP, WSSE))
        if sec is None:
            raise Rifiutata("no wsse:Security header")
        sig = sec.find("{%s}Signature" % DS)
        if sig is None:
            raise Rifiutata("no ds:Signature")
        ctx = xmlsec.SignatureContext()
        covered = set()
        for ref in sig.iterfind("{%s}SignedInfo/{%s}Reference" % (DS, DS)):
            ident = (ref.get("URI") or "")[1:]
            # One element per Id, or a wrapped copy could be what the digest covers.
            found = envelope.xpath("//*[@wsu:Id=$i]", namespaces={"wsu": WSU}, i=ident)
            if len(found) != 1:
                raise Rifiutata("Id %r names %d elements" % (ident, len(found)))
            ctx.register_id(found[0], "Id", WSU)
            covered.add(found[0])
        body = envelope.find("{%s}Body" % SOAP)
        # As a WSS4J peer requiring the eGov Intestazione header: the whole element is signed.
        busta = envelope.find("{%s}Header/{%s}Intestazione" % (SOAP, EGOV))
        ts = sec.find("{%s}Timestamp" % WSU)
        for name, el in (("Body", body), ("Intestazione", busta), ("Timestamp", ts)):
            if el is None or el not in covered:
                raise Rifiutata("%s is not signed" % name)
        expires = datetime.datetime.strptime(ts.findtext("{%s}Expires" % WSU)[:19], "%Y-%m-%dT%H:%M:%S")
        if expires.replace(tzinfo=datetime.timezone.utc) < datetime.datetime.now(datetime.timezone.utc):
            raise Rifiutata("Timestamp expired")
        bst = sec.find("{%s}BinarySecurityToken" % WSSE)
        if bst is None or base64.b64decode(bst.text) != _der(self.peer_cert):
            raise Rifiutata("the token is not the partner's certificate")
        ctx.key = xmlsec.Key.from_file(self.peer_cert, xmlsec.KeyFormat.CERT_PEM)
        try:
            ctx.verify(sig)
        except xmlsec.Error as e:
            raise Rifiutata("signature does not verify: %s" % e)
        return envelope


def cmd_verify(msg, peer_cert):
    from zeep.exceptions import SignatureVerificationFailed
    from zeep.wsse.signature import verify_envelope

    env = etree.fromstring(open(msg, "rb").read())
    try:
        verify_envelope(env, peer_cert)  # zeep's own check: signature value and digests
        FirmaBusta(None, None, peer_cert).verify(env)
    except SignatureVerificationFailed:
        print("FAIL zeep verify_envelope: SignatureVerificationFailed")
        return 1
    except Rifiutata as e:
        print("FAIL", e)
        return 1
    print("OK")
    return 0


def cmd_sign(msg, key, cert, out):
    env = etree.fromstring(open(msg, "rb").read())
    FirmaBusta(key, cert, cert).apply(env, {})
    open(out, "wb").write(etree.tostring(env, xml_declaration=True, encoding="utf-8"))
    return 0


def cmd_call(wsdl, url, key, cert, ca, peer_cert, modulo, ident, ora, stock=False):
    import requests
    import zeep
    from zeep.transports import Transport
    from zeep.wsse.signature import BinarySignature

    session = requests.Session()
    session.cert = (cert, key)  # mutual TLS
    session.verify = ca
    session.trust_env = False   # else REQUESTS_CA_BUNDLE in the environment overrides verify
    if stock:
        wsse = BinarySignature(key, cert, signature_method=xmlsec.Transform.RSA_SHA256,
                               digest_method=xmlsec.Transform.SHA256)
    else:
        wsse = FirmaBusta(key, cert, peer_cert)
    client = zeep.Client(wsdl, transport=Transport(session=session, timeout=20), wsse=wsse)
    service = client.create_service("{http://servizi.lavoro.gov.it/cliclavoro}cliclavoroWSSoapBinding", url)
    Intestazione = client.get_element("{%s}Intestazione" % EGOV)
    busta = Intestazione(
        IntestazioneMessaggio={
            "Mittente": {"IdentificativoParte": [{"_value_1": "EMILIA", "tipo": "SPC"}]},
            "Destinatario": {"IdentificativoParte": {"_value_1": "MinisteroLavoro", "tipo": "SPC"}},
            "ProfiloCollaborazione": {"_value_1": "EGOV_IT_ServizioSincrono"},
            "Servizio": {"_value_1": "ClicLavoro", "tipo": "SPC"},
            "Azione": "InvioCandidatura",
            "Messaggio": {"Identificatore": ident,
                          "OraRegistrazione": {"_value_1": datetime.datetime.fromisoformat(ora),
                                               "tempo": "EGOV_IT_SPC"}},
            "ProfiloTrasmissione": {"inoltro": "EGOV_IT_ALPIUUNAVOLTA", "confermaRicezione": False},
        },
        actor="http://www.cnipa.it/eGov_it/portadominio",
        mustUnderstand="1",
    )
    res = service.InvioCandidatura(CandidaturaXML=open(modulo, encoding="utf-8").read(),
                                   _soapheaders={"intestazione": busta})
    im = res["header"]["intestazione"]["IntestazioneMessaggio"]
    print(json.dumps({
        "Tipo_Risposta": res["body"]["Tipo_Risposta"],
        "Mittente": im["Mittente"]["IdentificativoParte"][0]["_value_1"],
        "RiferimentoMessaggio": im["Messaggio"]["RiferimentoMessaggio"],
    }))
    return 0


def cmd_call_pd(wsdl, url, candidatura, vacancy):
    import zeep

    client = zeep.Client(wsdl)
    services = {name: sorted(s.ports) for name, s in client.wsdl.services.items()}
    # One proxy for every operation of the porta delegata.
    service = client.create_service(
        "{http://servizi.lavoro.gov.it/cliclavoro}cliclavoroWSPortaDelegataBinding", url)
    c = service.InvioCandidatura(CandidaturaXML=open(candidatura, encoding="utf-8").read())
    v = service.InvioVacancy(VacancyXML=open(vacancy, encoding="utf-8").read())
    print(json.dumps({
        "services": services,
        "InvioCandidatura": c["Tipo_Risposta"],
        "InvioVacancy": v["Tipo_Risposta"],
    }))
    return 0


def main(argv):
    cmds = {"verify": (cmd_verify, 2), "sign": (cmd_sign, 4), "call": (cmd_call, 9),
            "call-stock": (lambda *a: cmd_call(*a, stock=True), 9),
            "call-pd": (cmd_call_pd, 4)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]][0](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
