"""WS-Security cost per message with python-xmlsec (libxmlsec1), for benches/wssec.rs to compare
with pdd's own dsig::firma / dsig::verifica. In-process loops, one thread, the same profile pdd
signs (tests/python/pdd_peer.py): a wsse:Security header first in the Header with a
BinarySecurityToken, a wsu:Timestamp and a ds:Signature (exclusive C14N, RSA-SHA256, SHA-256
digests) over the Body, the busta's IntestazioneMessaggio and the Timestamp, by wsu:Id.

    xmlsec_py.py KEY_PEM CERT_PEM UNSIGNED SIGNED SECONDS MODE [SAMPLE_OUT]

MODE is sign, verify, both (sign then verify the result, per iteration) or all (the three).
SIGNED is a message pdd signed with KEY/CERT: the verify loop checks those very bytes.
SAMPLE_OUT, if given, receives one message signed here (for the caller to check).
Prints one JSON object: {"sign": {"iterations", "seconds", "messages_per_s", "us_per_message"},
...}, plus "libxmlsec" and "libxml" versions. Exit 1 if SIGNED does not verify here (a comparison
where one side fails is worthless), 2 on a usage problem.

What one iteration does, to match pdd:
  sign    bytes -> lxml tree; add Ids, the Security header, the Signature template and its three
          references; sign; serialise to bytes. Like dsig::firma (a str in, a String out). The
          private key is loaded once, outside the loop, as pdd's firma takes a parsed key.
  verify  bytes -> lxml tree; find the Security header and the Signature; one pass over the tree
          registering every wsu:Id; xmlsec verifies digests and the signature value. The
          public key is loaded once, outside the loop, from CERT_PEM. This is less than pdd's
          verify (Envelope::parse + dsig::verifica) does per message: pdd also parses the
          certificate out of the BinarySecurityToken, checks each reference resolves to exactly
          one element, that Body, busta and Timestamp are the signed elements, the algorithms and
          the Timestamp's freshness. That favours python.
"""
import base64
import datetime
import json
import os
import sys
import time

import xmlsec
from lxml import etree

# The namespaces and the certificate reader of the test suite's python-xmlsec peer.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from pdd_peer import B64, DS, SOAP, EGOV, WSSE, WSU, WSU_ID, X509V3, _der  # noqa: E402

TTL = datetime.timedelta(minutes=5)

# Prebuilt paths, as any real caller would keep them.
FIND_HEADER = "{%s}Header" % SOAP
FIND_BODY = "{%s}Body" % SOAP
FIND_BUSTA = "{%s}Header/{%s}Intestazione/{%s}IntestazioneMessaggio" % (SOAP, EGOV, EGOV)
FIND_SIG = "{%s}Header/{%s}Security/{%s}Signature" % (SOAP, WSSE, DS)
WITH_ID = etree.XPath("//*[@wsu:Id]", namespaces={"wsu": WSU})


def _utc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def sign(msg, key, der):
    """One message signed the way pdd signs it; returns the serialised bytes."""
    env = etree.fromstring(msg)
    header = env.find(FIND_HEADER)
    body = env.find(FIND_BODY)
    busta = env.find(FIND_BUSTA)
    if header is None or body is None or busta is None:
        raise ValueError("no Header, Body or busta e-Gov to sign")
    sec = etree.Element("{%s}Security" % WSSE, nsmap={"wsse": WSSE, "wsu": WSU})
    header.insert(0, sec)  # first in the Header, as pdd puts it
    sec.set("{%s}mustUnderstand" % SOAP, "1")
    bst = etree.SubElement(sec, "{%s}BinarySecurityToken" % WSSE,
                           {"EncodingType": B64, "ValueType": X509V3, WSU_ID: "pdd-token"})
    bst.text = base64.b64encode(der).decode()
    now = datetime.datetime.now(datetime.timezone.utc)
    ts = etree.SubElement(sec, "{%s}Timestamp" % WSU, {WSU_ID: "pdd-ts"})
    etree.SubElement(ts, "{%s}Created" % WSU).text = _utc(now)
    etree.SubElement(ts, "{%s}Expires" % WSU).text = _utc(now + TTL)
    sig = xmlsec.template.create(env, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA256,
                                 ns="ds")
    sec.append(sig)
    ctx = xmlsec.SignatureContext()
    for el, ident in ((body, "pdd-body"), (busta, "pdd-busta"), (ts, "pdd-ts")):
        el.set(WSU_ID, el.get(WSU_ID) or ident)
        ctx.register_id(el, "Id", WSU)
        ref = xmlsec.template.add_reference(sig, xmlsec.Transform.SHA256, uri="#" + el.get(WSU_ID))
        xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    info = xmlsec.template.ensure_key_info(sig)
    token_ref = etree.SubElement(info, "{%s}SecurityTokenReference" % WSSE)
    etree.SubElement(token_ref, "{%s}Reference" % WSSE, URI="#pdd-token", ValueType=X509V3)
    ctx.key = key
    ctx.sign(sig)
    return etree.tostring(env.getroottree(), xml_declaration=True, encoding="utf-8")


def verify(msg, cert_key):
    """Parses a signed message and verifies its signature; raises xmlsec.Error if it fails."""
    env = etree.fromstring(msg)
    sig = env.find(FIND_SIG)
    if sig is None:
        raise ValueError("no wsse:Security/ds:Signature")
    ctx = xmlsec.SignatureContext()
    for el in WITH_ID(env):
        ctx.register_id(el, "Id", WSU)
    ctx.key = cert_key
    ctx.verify(sig)


def rate(f, seconds):
    f()  # warm-up, as benches/wssec.rs does
    n = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(10):
            f()
        n += 10
    secs = time.perf_counter() - t0
    return {"iterations": n, "seconds": secs, "messages_per_s": n / secs,
            "us_per_message": secs * 1e6 / n}


def main(argv):
    if len(argv) not in (7, 8) or argv[6] not in ("sign", "verify", "both", "all"):
        print(__doc__, file=sys.stderr)
        return 2
    key_pem, cert_pem, unsigned_path, signed_path, seconds, mode = argv[1:7]
    seconds = float(seconds)
    unsigned = open(unsigned_path, "rb").read()
    signed = open(signed_path, "rb").read()
    key = xmlsec.Key.from_file(key_pem, xmlsec.KeyFormat.PEM)
    cert_key = xmlsec.Key.from_file(cert_pem, xmlsec.KeyFormat.CERT_PEM)
    der = _der(cert_pem)

    # A comparison where one side fails is worthless: check both directions once.
    try:
        verify(signed, cert_key)
    except (xmlsec.Error, ValueError) as e:
        print("FAIL python-xmlsec does not verify pdd's signed message: %s" % e, file=sys.stderr)
        return 1
    mine = sign(unsigned, key, der)
    try:
        verify(mine, cert_key)
    except (xmlsec.Error, ValueError) as e:
        print("FAIL python-xmlsec does not verify its own signed message: %s" % e, file=sys.stderr)
        return 1
    if len(argv) == 8:
        open(argv[7], "wb").write(mine)

    out = {"libxmlsec": ".".join(map(str, xmlsec.get_libxmlsec_version())),
           "libxml": ".".join(map(str, xmlsec.get_libxml_version()))}
    if mode in ("sign", "all"):
        out["sign"] = rate(lambda: sign(unsigned, key, der), seconds)
    if mode in ("verify", "all"):
        out["verify"] = rate(lambda: verify(signed, cert_key), seconds)
    if mode in ("both", "all"):
        out["both"] = rate(lambda: verify(sign(unsigned, key, der), cert_key), seconds)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
