//! WS-Security against real peers: `xmlsec1` (libxmlsec1) signs and verifies, and its
//! `--store-references` output is the byte-for-byte reference for our exclusive C14N.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{id_attrs, xmlsec_template, KeyPair, Pki, TempDir, WSU};
use pdd::soap::Envelope;
use pdd::wssec::{c14n, dsig};
use pdd::xml::Limits;

fn xmlsec1(args: &[String]) -> (bool, String, Vec<u8>) {
    let out = Command::new("xmlsec1")
        .args(args)
        .output()
        .expect("xmlsec1 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout,
    )
}

/// Byte buffers between two markers of xmlsec1's --store-references/--store-signatures dump.
fn buffers(dump: &[u8], start: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(i) = find(&dump[pos..], start).map(|i| i + pos) {
        let from = i + start.len();
        let Some(j) = find(&dump[from..], end).map(|j| j + from) else {
            break;
        };
        out.push(dump[from..j].to_vec());
        pos = j + end.len();
    }
    out
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn request() -> String {
    let mut r = common::Req::candidatura();
    r.ora = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string();
    r.xml()
}

#[test]
#[cfg_attr(pdd_no_xmlsec1, ignore = "xmlsec1 is not installed (Debian xmlsec1)")]
fn pdd_signatures_verify_in_xmlsec1_and_agree_on_every_byte() {
    common::require(common::Peer::Xmlsec1);
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let dir = TempDir::new("xmlsec-verify");
    let signed = emilia.sign(&request());
    let f = dir.0.join("signed.xml");
    std::fs::write(&f, &signed).unwrap();
    let mut args = vec![
        "--verify".to_string(),
        "--pubkey-cert-pem".into(),
        emilia.cert.display().to_string(),
    ];
    args.extend(id_attrs());
    args.extend([
        "--store-references".into(),
        "--store-signatures".into(),
        f.display().to_string(),
    ]);
    let (ok, err, dump) = xmlsec1(&args);
    assert!(ok, "xmlsec1 --verify failed: {err}");
    // The bytes xmlsec1 digested are the bytes we digested.
    let refs = buffers(
        &dump,
        b"== PreDigest data - start buffer:\n",
        b"\n== PreDigest data - end buffer\n",
    );
    assert_eq!(refs.len(), 3);
    let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
    let targets: Vec<usize> = ["pdd-body", "pdd-busta", "pdd-ts"]
        .iter()
        .map(|id| dsig::span_of(&signed, id).unwrap().start)
        .collect();
    for (r, start) in refs.iter().zip(targets) {
        assert_eq!(
            String::from_utf8_lossy(r),
            c14n::canonicalize_one(&signed, start, &[]).unwrap()
        );
    }
    let si = buffers(
        &dump,
        b"== PreSigned data - start buffer:\n",
        b"\n== PreSigned data - end buffer\n",
    );
    let si_start = signed.find("<ds:SignedInfo>").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&si[0]),
        c14n::canonicalize_one(&signed, si_start, &[]).unwrap()
    );
    drop(env);

    // Tampering is caught by xmlsec1 too.
    let bad = signed.replace("BNCLRA85M41F205C", "BNCLRA85M41F205X");
    std::fs::write(&f, &bad).unwrap();
    let mut args = vec![
        "--verify".to_string(),
        "--pubkey-cert-pem".into(),
        emilia.cert.display().to_string(),
    ];
    args.extend(id_attrs());
    args.push(f.display().to_string());
    assert!(!xmlsec1(&args).0);
}

fn xmlsec_sign(template: &str, kp: &KeyPair, dir: &Path) -> String {
    let tpl = dir.join("tpl.xml");
    let out = dir.join("xmlsec-signed.xml");
    std::fs::write(&tpl, template).unwrap();
    let mut args = vec![
        "--sign".to_string(),
        "--privkey-pem".into(),
        format!("{},{}", kp.key.display(), kp.cert.display()),
    ];
    args.extend(id_attrs());
    args.extend([
        "--output".into(),
        out.display().to_string(),
        tpl.display().to_string(),
    ]);
    let (ok, err, _) = xmlsec1(&args);
    assert!(ok, "xmlsec1 --sign failed: {err}");
    std::fs::read_to_string(out).unwrap()
}

#[test]
#[cfg_attr(pdd_no_xmlsec1, ignore = "xmlsec1 is not installed (Debian xmlsec1)")]
fn xmlsec1_signatures_verify_in_pdd_and_tampering_is_caught() {
    common::require(common::Peer::Xmlsec1);
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
    let dir = TempDir::new("xmlsec-sign");
    let signed = xmlsec_sign(&xmlsec_template(&emilia.sign(&request())), &emilia, &dir.0);
    assert!(
        signed.contains("<ds:SignatureValue>")
            && !signed.contains("<ds:SignatureValue></ds:SignatureValue>")
    );
    let ok = common::verify_signed(&signed).expect("xmlsec1's signature verifies in pdd");
    assert_eq!(pdd::wssec::pki::cn(&ok.cert).as_deref(), Some("EMILIA"));

    use dsig::FirmaError::*;
    let token = |kp: &KeyPair| {
        let c = kp.load().1;
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            c.to_der().unwrap(),
        )
    };
    let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
    let body = signed[env.body.clone()].to_string();
    type Atteso = fn(&dsig::FirmaError) -> bool;
    let cases: Vec<(&str, String, Atteso)> = vec![
        ("body changed", signed.replace("BNCLRA85M41F205C", "BNCLRA85M41F205X"), |e| matches!(e, Xml(_))),
        ("header changed", signed.replace(">InvioCandidatura</eGov_IT:Azione>", ">InvioVacancy</eGov_IT:Azione>"), |e| matches!(e, Intestazione(_))),
        ("token swapped for another valid certificate", signed.replace(&token(&emilia), &token(&lazio)), |e| matches!(e, Xml(_))),
        (
            "a second Body",
            signed.replacen("</soapenv:Body>", "</soapenv:Body><soapenv:Body><x:evil xmlns:x=\"urn:x\"/></soapenv:Body>", 1),
            |_| true,
        ),
        (
            "signed Body moved into a header, another Body in its place",
            signed
                .replace(&body, "<soapenv:Body><x:evil xmlns:x=\"urn:x\"/></soapenv:Body>")
                .replacen("<soapenv:Header>", &format!("<soapenv:Header><w:W xmlns:w=\"urn:w\">{body}</w:W>"), 1),
            |e| matches!(e, Xml(_)),
        ),
        (
            "reference pointing to a decoy with the same id",
            signed.replacen(
                "<soapenv:Header>",
                &format!("<soapenv:Header><w:Decoy xmlns:w=\"urn:w\" xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-body\"/>"),
                1,
            ),
            |e| matches!(e, Xml(_)),
        ),
    ];
    for (what, msg, expected) in cases {
        // A second Body is not even a SOAP message.
        let Ok(env) = Envelope::parse(msg.as_bytes(), Limits::default()) else {
            assert_eq!(what, "a second Body");
            continue;
        };
        let r = dsig::verifica(&msg, &env, &common::regole(chrono::Utc::now()));
        match r {
            Err(e) => assert!(expected(&e), "{what}: {e:?}"),
            Ok(_) => panic!("{what}: accepted"),
        }
    }
    // An expired Timestamp.
    let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
    let late = dsig::verifica(
        &signed,
        &env,
        &common::regole(chrono::Utc::now() + chrono::Duration::minutes(30)),
    );
    assert!(matches!(late, Err(Politica(_))), "{late:?}");
}

/// Documents with hard cases for canonicalization; each has an element with Id="t1" and a
/// signature template pointing at it.
fn c14n_cases() -> Vec<(&'static str, String, &'static str)> {
    let sig = |incl: &str| {
        let transform = if incl.is_empty() {
            "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>".to_string()
        } else {
            format!("<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"><ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"{incl}\"/></ds:Transform>")
        };
        format!("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"#t1\"><ds:Transforms>{transform}</ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature>")
    };
    vec![
        (
            "namespace redeclarations",
            format!("<r xmlns:a=\"urn:a\" xmlns:b=\"urn:b\"><a:t Id=\"t1\" xmlns:a=\"urn:a\"><b:x xmlns:b=\"urn:b2\"><b:y xmlns:b=\"urn:b2\"/></b:x><a:z xmlns:a=\"urn:a3\"/></a:t>{}</r>", sig("")),
            "",
        ),
        (
            "default namespaces",
            format!("<r xmlns=\"urn:d\"><t Id=\"t1\"><u xmlns=\"\"><v xmlns=\"urn:e\"/></u><w/></t>{}</r>", sig("")),
            "",
        ),
        (
            "attribute order",
            format!("<r xmlns:z=\"urn:a\" xmlns:a=\"urn:z\"><t Id=\"t1\" z:b=\"1\" a:a=\"2\" c=\"3\" b=\"4\" xml:lang=\"it\">x</t>{}</r>", sig("")),
            "",
        ),
        (
            "CDATA, entities, character references",
            format!("<r><t Id=\"t1\" a=\"&lt;&amp;&gt;&quot;&apos;&#x20AC;\"><![CDATA[<b>&amp; ]]>&lt;c&gt; &#169; &#x1F600;</t>{}</r>", sig("")),
            "",
        ),
        (
            "CRLF, tabs and newlines in text and attributes",
            format!("<r>\r\n<t Id=\"t1\" a=\"x\r\ny\tz\" b=\"&#13;&#10;&#9;\">line1\r\nline2\rline3&#13;</t>\r\n{}</r>", sig("")),
            "",
        ),
        (
            "comments and processing instructions",
            format!("<r><!-- out --><t Id=\"t1\"><!-- in --><?app  do this ?>x<!--more--></t>{}</r>", sig("")),
            "",
        ),
        (
            "non-ASCII text",
            format!("<r><t Id=\"t1\" n=\"àèìòù\">Città — 東京 😀 ß</t>{}</r>", sig("")),
            "",
        ),
        (
            "inclusive namespaces",
            format!("<r xmlns=\"urn:d\" xmlns:p=\"urn:p\" xmlns:q=\"urn:q\"><t Id=\"t1\"><x/></t>{}</r>", sig("#default p")),
            "#default p",
        ),
        (
            "unused declarations and empty elements",
            format!("<r><t Id=\"t1\" xmlns:u=\"urn:unused\" xmlns:v=\"urn:v\"><v:e/><e></e></t>{}</r>", sig("")),
            "",
        ),
        (
            "xml attributes of ancestors are not inherited",
            format!("<r xml:lang=\"en\" xml:space=\"preserve\"><t Id=\"t1\">x</t>{}</r>", sig("")),
            "",
        ),
    ]
}

#[test]
#[cfg_attr(pdd_no_xmlsec1, ignore = "xmlsec1 is not installed (Debian xmlsec1)")]
fn exclusive_c14n_equals_xmlsec1_byte_for_byte() {
    common::require(common::Peer::Xmlsec1);
    let pki = Pki::new();
    let kp = pki.make("k", "C14N", false, 30, 0);
    let dir = TempDir::new("c14n");
    for (i, (what, doc, incl)) in c14n_cases().into_iter().enumerate() {
        let tpl: PathBuf = dir.0.join(format!("case{i}.xml"));
        std::fs::write(&tpl, &doc).unwrap();
        let out = dir.0.join(format!("case{i}.signed.xml"));
        let (ok, err, dump) = xmlsec1(&[
            "--sign".into(),
            "--privkey-pem".into(),
            format!("{},{}", kp.key.display(), kp.cert.display()),
            "--id-attr:Id".into(),
            "t".into(),
            "--store-references".into(),
            "--store-signatures".into(),
            "--output".into(),
            out.display().to_string(),
            tpl.display().to_string(),
        ]);
        assert!(ok, "{what}: xmlsec1 failed: {err}");
        let theirs = buffers(
            &dump,
            b"== PreDigest data - start buffer:\n",
            b"\n== PreDigest data - end buffer\n",
        );
        let incl: Vec<&str> = incl.split_whitespace().collect();
        let start = doc.find("<t Id").or_else(|| doc.find("<a:t Id")).unwrap();
        let ours = c14n::canonicalize_one(&doc, start, &incl).unwrap();
        assert_eq!(String::from_utf8_lossy(&theirs[0]), ours, "{what}");
        // And the SignedInfo of what xmlsec1 wrote, canonicalized in place.
        let signed = std::fs::read_to_string(&out).unwrap();
        let si = buffers(
            &dump,
            b"== PreSigned data - start buffer:\n",
            b"\n== PreSigned data - end buffer\n",
        );
        let si_start = signed.find("<ds:SignedInfo>").unwrap();
        assert_eq!(
            String::from_utf8_lossy(&si[0]),
            c14n::canonicalize_one(&signed, si_start, &[]).unwrap(),
            "{what}: SignedInfo"
        );
    }
}
