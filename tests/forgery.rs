//! Forgeries against the real server. A Ministry that requires its partners' signatures is sent,
//! over HTTPS by curl, signature-wrapping attacks (the signed Body or busta moved, another put
//! where the gateway reads), id tricks, misplaced Security headers, algorithms and transforms
//! other than exclusive C14N / RSA-SHA256 / SHA-256, foreign tokens and keys, certificates that
//! are not the Mittente's, replays and stale Timestamps. Each must be answered with its EGOV_IT
//! code, recorded as refused, and nothing of it may reach the service (no modulo stored).
//!
//! `xmlsec1 --verify` judges the same bytes: it calls the wrapping forgeries *valid* (their
//! signature is intact; it only moved), and the algorithm variants too (they are standard, only
//! not our profile). What stops them is pdd's check that the Body and busta it processes are the
//! elements the signature covers, and its fixed algorithm profile.
//!
//! The table runs twice: with mutual TLS (the TLS identity must also be the Mittente) and with
//! `client_auth = false`, where the signature is the only credential.

mod common;

use pdd::cli::certs;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use common::{curl, have, id_attrs, xmlsec_template, KeyPair, Pki, Req, TempDir, EGOV, SOAP, WSU};
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use pdd::config::Config;
use pdd::registry::{PoliticaFirma, Soggetto};
use pdd::store::Outcome;
use pdd::wssec::{c14n, dsig};

/// The wrapping attacks below are built on the form many partners sign: the Body and the
/// busta's IntestazioneMessaggio (pdd signs the whole Intestazione by default, and accepts both).
trait FirmaStretta {
    fn firma_stretta(&self, msg: &str) -> String;
}

impl FirmaStretta for KeyPair {
    fn firma_stretta(&self, msg: &str) -> String {
        self.sign_covering(msg, dsig::Copertura::IntestazioneMessaggio)
    }
}

const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The modulo the partner signed, and the one a forger wants in.
const FIRMATO: &str = "SILBO26200000000000000042";
const FALSO: &str = "SILBO26200000000000000666";

fn candidatura(codice: &str) -> String {
    common::invio_candidatura(
        &common::example("moduli/candidatura-2.0.xml").replace(FIRMATO, codice),
    )
}

/// A fresh busta of `mittente` to the Ministry carrying the signed modulo.
fn richiesta(mittente: &'static str) -> String {
    Req::new(
        mittente,
        "MinisteroLavoro",
        "ClicLavoro",
        Some("InvioCandidatura"),
        candidatura(FIRMATO),
    )
    .xml()
}

/// The forger's Body: another candidatura.
fn corpo_falso() -> String {
    format!("<soapenv:Body>{}</soapenv:Body>", candidatura(FALSO))
}

/// The range of the first element whose start tag begins with `open` (e.g. `<soapenv:Body`).
fn elemento(msg: &str, open: &str) -> std::ops::Range<usize> {
    let start = msg
        .find(&format!("{open} "))
        .or_else(|| msg.find(&format!("{open}>")))
        .unwrap_or_else(|| panic!("{open} not found"));
    let name = open[1..].split_whitespace().next().unwrap();
    let close = format!("</{name}>");
    let tag_end = msg[start..].find('>').unwrap() + start;
    if msg[..tag_end].ends_with('/') {
        return start..tag_end + 1;
    }
    let end = msg[start..].find(&close).unwrap() + start + close.len();
    start..end
}

fn testo<'a>(msg: &'a str, open: &str) -> &'a str {
    &msg[elemento(msg, open)]
}

/// `msg` with `text` inserted right after the start tag that begins with `open`.
fn dentro(msg: &str, open: &str, text: &str) -> String {
    let r = elemento(msg, open);
    let at = msg[r.start..].find('>').unwrap() + r.start + 1;
    let mut out = msg.to_string();
    out.insert_str(at, text);
    out
}

/// `msg` with `text` inserted right before the end of the element that begins with `open`.
fn in_fondo(msg: &str, open: &str, text: &str) -> String {
    let r = elemento(msg, open);
    let name = open[1..].split_whitespace().next().unwrap();
    let at = r.end - format!("</{name}>").len();
    let mut out = msg.to_string();
    out.insert_str(at, text);
    out
}

fn senza(msg: &str, open: &str) -> String {
    let mut out = msg.to_string();
    out.replace_range(elemento(msg, open), "");
    out
}

fn sostituito(msg: &str, open: &str, with: &str) -> String {
    let mut out = msg.to_string();
    out.replace_range(elemento(msg, open), with);
    out
}

/// A header block of no known namespace wrapping `inner` (which may use the busta's prefix).
fn involucro(inner: &str) -> String {
    format!("<w:Involucro xmlns:w=\"urn:w\" xmlns:eGov_IT=\"{EGOV}\">{inner}</w:Involucro>")
}

/// The IntestazioneMessaggio of a fresh busta of EMILIA: same parties, service and action, a
/// new Identificatore (what a forger wants, to get past the duplicate filter).
fn im_falsa() -> String {
    testo(&richiesta("EMILIA"), "<eGov_IT:IntestazioneMessaggio").to_string()
}

/// Recomputes the digests of the `#id` references and the signature value with `kp`: the message
/// a partner would send with the SignedInfo as it now stands (a genuine signature).
fn rifirma(msg: &str, kp: &KeyPair) -> String {
    let (key, _) = kp.load();
    let mut out = msg.to_string();
    let mut from = 0;
    while let Some(i) = out[from..].find("<ds:Reference").map(|i| i + from) {
        let tag = &out[i..out[i..].find('>').unwrap() + i];
        let id = tag
            .split("URI=\"#")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .filter(|id| !id.contains('('))
            .map(str::to_string);
        if let Some(start) = id.and_then(|id| dsig::span_of(&out, &id)).map(|s| s.start) {
            let c = c14n::canonicalize_one(&out, start, &[]).unwrap();
            let d = B64.encode(openssl::sha::sha256(c.as_bytes()));
            let dv = out[i..].find("<ds:DigestValue>").unwrap() + i + "<ds:DigestValue>".len();
            let dv_end = out[dv..].find("</ds:DigestValue>").unwrap() + dv;
            out.replace_range(dv..dv_end, &d);
        }
        from = i + 1;
    }
    let si = out.find("<ds:SignedInfo").unwrap();
    let canon = c14n::canonicalize_one(&out, si, &[]).unwrap();
    let mut s = Signer::new(MessageDigest::sha256(), &key).unwrap();
    s.update(canon.as_bytes()).unwrap();
    let sig = B64.encode(s.sign_to_vec().unwrap());
    let sv = out.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let sv_end = out[sv..].find("</ds:SignatureValue>").unwrap() + sv;
    out.replace_range(sv..sv_end, &sig);
    out
}

/// `msg` signed by `kp` as pdd signs, with the Timestamp made at `created` lasting `ttl`.
fn firmato_il(
    kp: &KeyPair,
    msg: &str,
    created: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
) -> String {
    let (key, cert) = kp.load();
    dsig::firma(
        msg,
        &key,
        &cert,
        created,
        ttl,
        dsig::Copertura::IntestazioneMessaggio,
    )
    .unwrap()
}

fn token(kp: &KeyPair) -> String {
    B64.encode(kp.load().1.to_der().unwrap())
}

fn xmlsec1(args: &[String]) -> (bool, String) {
    let out = std::process::Command::new("xmlsec1")
        .args(args)
        .output()
        .expect("xmlsec1 runs");
    let err = String::from_utf8_lossy(&out.stderr);
    (
        out.status.success(),
        err.lines().last().unwrap_or("").to_string(),
    )
}

/// xmlsec1's verdict on a message, with the key given by `key` (`--pubkey-cert-pem …`).
fn xmlsec_verifica(msg: &str, key: &[String], dir: &Path) -> (bool, String) {
    let f = dir.join("verifica.xml");
    std::fs::write(&f, msg).unwrap();
    let mut args = vec!["--verify".to_string()];
    args.extend(key.iter().cloned());
    args.extend(id_attrs());
    args.push(f.display().to_string());
    xmlsec1(&args)
}

/// A template signed by xmlsec1 with `key` (`--privkey-pem …` or `--hmackey …`); without
/// xmlsec1, or when it cannot, the template itself (pdd refuses these before any digest).
fn xmlsec_firma(template: &str, key: &[String], dir: &Path, xmlsec: bool) -> (String, bool) {
    if !xmlsec {
        return (template.to_string(), false);
    }
    let tpl = dir.join("modello.xml");
    let out = dir.join("firmato.xml");
    std::fs::write(&tpl, template).unwrap();
    let mut args = vec!["--sign".to_string()];
    args.extend(key.iter().cloned());
    args.extend(id_attrs());
    args.extend([
        "--output".into(),
        out.display().to_string(),
        tpl.display().to_string(),
    ]);
    let (ok, err) = xmlsec1(&args);
    if !ok {
        eprintln!("xmlsec1 could not sign the variant: {err}");
        return (template.to_string(), false);
    }
    (std::fs::read_to_string(out).unwrap(), true)
}

/// The EGOV_IT codes of an answer: the error busta's eccezioni, else the bare Fault's.
fn codici(body: &str) -> Vec<String> {
    let mut v: Vec<String> = body
        .split("codiceEccezione=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_string)
        .collect();
    if v.is_empty() {
        for c in ["EGOV_IT_001", "EGOV_IT_300"] {
            if body.contains(c) {
                v.push(c.to_string());
            }
        }
    }
    v
}

fn posizioni(body: &str) -> Vec<&str> {
    body.split("posizione=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect()
}

/// Who sends: over mutual TLS the client certificate; without client_auth nobody's.
#[derive(Clone, Copy, PartialEq)]
enum Da {
    Emilia,
    Lazio,
    Toscana,
}

/// How `xmlsec1 --verify` must judge the message (None: not asked).
type Xs = Option<(Vec<String>, bool)>;

struct Caso {
    nome: &'static str,
    msg: String,
    da: Da,
    status: u16,
    codice: &'static str,
    xmlsec: Xs,
}

fn caso(nome: &'static str, msg: String, codice: &'static str) -> Caso {
    Caso {
        nome,
        msg,
        da: Da::Emilia,
        status: 500,
        codice,
        xmlsec: None,
    }
}

impl Caso {
    fn da(mut self, da: Da) -> Caso {
        self.da = da;
        self
    }
    fn xmlsec(mut self, key: Vec<String>, valid: bool) -> Caso {
        self.xmlsec = Some((key, valid));
        self
    }
}

struct Parti {
    pki: Pki,
    me: KeyPair,
    emilia: KeyPair,
    lazio: KeyPair,
    /// A registered partner whose pinned certificate has an EC key.
    toscana: KeyPair,
    dir: TempDir,
    xmlsec: bool,
}

impl Parti {
    fn new() -> Parti {
        let pki = Pki::new();
        let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
        let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
        let lazio = pki.make("lazio", "LAZIO", false, 30, 0);
        let toscana = ec_pair(&pki, "toscana", "TOSCANA");
        Parti {
            pki,
            me,
            emilia,
            lazio,
            toscana,
            dir: TempDir::new("forgery"),
            xmlsec: have(common::Peer::Xmlsec1),
        }
    }

    fn kp(&self, da: Da) -> &KeyPair {
        match da {
            Da::Emilia => &self.emilia,
            Da::Lazio => &self.lazio,
            Da::Toscana => &self.toscana,
        }
    }

    /// xmlsec1 with EMILIA's certificate.
    fn chiave_emilia(&self) -> Vec<String> {
        vec![
            "--pubkey-cert-pem".into(),
            self.emilia.cert.display().to_string(),
        ]
    }

    fn privata_emilia(&self) -> Vec<String> {
        vec![
            "--privkey-pem".into(),
            format!(
                "{},{}",
                self.emilia.key.display(),
                self.emilia.cert.display()
            ),
        ]
    }

    /// The Ministry over TLS, requiring signatures from EMILIA, LAZIO and TOSCANA (pinned) and
    /// from partners issued by its CA.
    fn config(&self, mtls: bool) -> Config {
        let mut c = Config::default();
        c.tls.cert = Some(self.me.cert.clone());
        c.tls.key = Some(self.me.key.clone());
        c.tls.ca = vec![self.pki.ca_path()];
        c.tls.client_auth = mtls;
        c.wssec.verifica = PoliticaFirma::Required;
        for (nome, kp) in [
            ("EMILIA", &self.emilia),
            ("LAZIO", &self.lazio),
            ("TOSCANA", &self.toscana),
        ] {
            let mut s = Soggetto::new("SPC", nome);
            s.cert = Some(kp.cert.display().to_string());
            s.firma = Some(PoliticaFirma::Required);
            c.registry.soggetti.push(s);
        }
        c
    }
}

/// A partner certificate with an EC P-256 key (self-signed, valid 30 days).
fn ec_pair(pki: &Pki, name: &str, cn: &str) -> KeyPair {
    use openssl::ec::{EcGroup, EcKey};
    let group = EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key = openssl::pkey::PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let san = ["127.0.0.1".to_string()];
    let cert = certs::certificato(
        &certs::Richiesta {
            cn,
            san: &san,
            days: 30,
            from_days: 0,
            uso: certs::Uso::Gateway,
        },
        &key,
        None,
        chrono::Utc::now(),
    )
    .unwrap();
    pki.save(name, &key, &cert).unwrap()
}

/// Every forgery, with the answer it must get. `mtls`: the TLS identity is checked too.
fn casi(p: &Parti, mtls: bool) -> Vec<Caso> {
    let emilia = &p.emilia;
    let firmato = || emilia.firma_stretta(&richiesta("EMILIA"));
    let ke = p.chiave_emilia();
    let kpriv = p.privata_emilia();
    let dir = &p.dir.0;
    let mut v = Vec::new();

    // --- Baselines: changes after signing (xmlsec1 refuses them too).
    let s = firmato();
    v.push(
        caso(
            "Body changed after signing",
            s.replace("BNCLRA85M41F205C", "BNCLRA85M41F205X"),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "busta changed after signing (Azione)",
            firmato().replace(
                ">InvioCandidatura</eGov_IT:Azione>",
                ">InvioVacancy</eGov_IT:Azione>",
            ),
            "EGOV_IT_117",
        )
        .xmlsec(ke.clone(), false),
    );

    // --- Wrapping the Body: the signed Body moved, another in its place.
    let s = firmato();
    let body = testo(&s, "<soapenv:Body").to_string();
    let evil = sostituito(&s, "<soapenv:Body", &corpo_falso());
    v.push(
        caso(
            "XSW: signed Body moved into a header wrapper, another Body in its place",
            dentro(&evil, "<soapenv:Header", &involucro(&body)),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed Body moved into wsse:Security, another Body in its place",
            dentro(&evil, "<wsse:Security", &involucro(&body)),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed Body nested inside the new Body, after the forged operation",
            in_fondo(&evil, "<soapenv:Body", &body),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed Body moved into the busta, another Body in its place",
            in_fondo(&evil, "<eGov_IT:Intestazione", &body),
            "EGOV_IT_002",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(caso(
        "XSW: a second Body after the signed one",
        s.replace(
            "</soapenv:Body>",
            &format!("</soapenv:Body>{}", corpo_falso()),
        ),
        "EGOV_IT_001",
    ));
    v.push(caso(
        "XSW: the forged Body before the Header, signed Header and Body after it",
        s.replacen(
            "<soapenv:Header>",
            &format!("{}<soapenv:Header>", corpo_falso()),
            1,
        ),
        "EGOV_IT_001",
    ));
    let con_id = |attr: &str| {
        let b = corpo_falso().replacen("<soapenv:Body>", &format!("<soapenv:Body {attr}>"), 1);
        dentro(
            &sostituito(&s, "<soapenv:Body", &b),
            "<soapenv:Header",
            &involucro(&body),
        )
    };
    v.push(
        caso(
            "XSW: new Body with the signed Body's wsu:Id, signed Body wrapped in a header",
            con_id(&format!("xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-body\"")),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "XSW: new Body with Id=\"pdd-body\" (no namespace), signed Body wrapped",
            con_id("Id=\"pdd-body\""),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "XSW: new Body with xml:id=\"pdd-body\", signed Body wrapped",
            con_id("xml:id=\"pdd-body\""),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "XSW: new Body with ds:Id=\"pdd-body\", signed Body wrapped",
            con_id(&format!("xmlns:ds=\"{DS}\" ds:Id=\"pdd-body\"")),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "XSW: new Body with wsu:Id whose prefix is bound to another namespace",
            con_id("xmlns:wsu=\"urn:not-wsu\" wsu:Id=\"pdd-body\""),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "signed Body dropped, new Body carrying its wsu:Id",
            sostituito(
                &s,
                "<soapenv:Body",
                &corpo_falso().replacen(
                    "<soapenv:Body>",
                    &format!("<soapenv:Body xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-body\">"),
                    1,
                ),
            ),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );

    // --- Wrapping the busta: the signed IntestazioneMessaggio moved, another inserted.
    let s = firmato();
    let im = testo(&s, "<eGov_IT:IntestazioneMessaggio").to_string();
    let intestazione = testo(&s, "<eGov_IT:Intestazione").to_string();
    let forged = sostituito(&s, "<eGov_IT:IntestazioneMessaggio", &im_falsa());
    v.push(
        caso(
            "XSW: signed busta moved into a header wrapper, another busta inserted",
            dentro(
                &sostituito(
                    &s,
                    "<eGov_IT:Intestazione",
                    &sostituito(&intestazione, "<eGov_IT:IntestazioneMessaggio", &im_falsa()),
                ),
                "<soapenv:Header",
                &involucro(&intestazione),
            ),
            "EGOV_IT_117",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed IntestazioneMessaggio moved into wsse:Security, another in the busta",
            dentro(&forged, "<wsse:Security", &involucro(&im)),
            "EGOV_IT_117",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: forged IntestazioneMessaggio first, the signed one second in the busta",
            forged.replacen(
                "</eGov_IT:IntestazioneMessaggio>",
                &format!("</eGov_IT:IntestazioneMessaggio>{im}"),
                1,
            ),
            "EGOV_IT_001",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed IntestazioneMessaggio wrapped in an unknown element of the busta",
            in_fondo(&forged, "<eGov_IT:Intestazione", &involucro(&im)),
            "EGOV_IT_002",
        )
        .xmlsec(ke.clone(), true),
    );
    v.push(
        caso(
            "XSW: signed IntestazioneMessaggio moved into the Body",
            in_fondo(&forged, "<soapenv:Body", &involucro(&im)),
            "EGOV_IT_117",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "XSW: forged IntestazioneMessaggio with the signed one's wsu:Id, signed one wrapped",
            dentro(
                &sostituito(
                    &s,
                    "<eGov_IT:IntestazioneMessaggio",
                    &im_falsa().replacen(
                        "<eGov_IT:IntestazioneMessaggio>",
                        &format!(
                            "<eGov_IT:IntestazioneMessaggio xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-busta\">"
                        ),
                        1,
                    ),
                ),
                "<soapenv:Header",
                &involucro(&im),
            ),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(caso(
        "XSW: a second busta header (forged) before the signed one",
        dentro(
            &s,
            "<soapenv:Header",
            &sostituito(&intestazione, "<eGov_IT:IntestazioneMessaggio", &im_falsa()),
        ),
        "EGOV_IT_001",
    ));

    // --- Ids: doubled, in other namespaces, only in comments or PIs; references not `#id`.
    let s = firmato();
    let body = testo(&s, "<soapenv:Body").to_string();
    for (nome, decoy) in [
        (
            "a decoy element with the Body's wsu:Id",
            format!("<w:D xmlns:w=\"urn:w\" xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-body\"/>"),
        ),
        (
            "a decoy element with the busta's wsu:Id",
            format!("<w:D xmlns:w=\"urn:w\" xmlns:wsu=\"{WSU}\" wsu:Id=\"pdd-busta\"/>"),
        ),
        (
            "a decoy with Id=\"pdd-body\" (no namespace)",
            "<w:D xmlns:w=\"urn:w\" Id=\"pdd-body\"/>".to_string(),
        ),
        (
            "a decoy with xml:id=\"pdd-body\"",
            "<w:D xmlns:w=\"urn:w\" xml:id=\"pdd-body\"/>".to_string(),
        ),
    ] {
        v.push(caso(
            nome,
            dentro(&s, "<soapenv:Header", &decoy),
            "EGOV_IT_202",
        ));
    }
    v.push(caso(
        "a decoy with the Timestamp's wsu:Id inside wsse:Security",
        dentro(
            &s,
            "<wsse:Security",
            "<w:D xmlns:w=\"urn:w\" wsu:Id=\"pdd-ts\"/>",
        ),
        "EGOV_IT_202",
    ));
    let evil = sostituito(&s, "<soapenv:Body", &corpo_falso());
    v.push(
        caso(
            "the signed Body only inside a comment, another Body in its place",
            dentro(
                &evil,
                "<soapenv:Header",
                &format!("<!--{}-->", body.replace("--", "- -")),
            ),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "the Body's id only in a processing instruction, another Body in its place",
            dentro(&evil, "<soapenv:Header", "<?pdd wsu:Id=\"pdd-body\"?>"),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    v.push(
        caso(
            "the signed Body only inside CDATA in a header, another Body in its place",
            dentro(
                &evil,
                "<soapenv:Header",
                &format!("<w:W xmlns:w=\"urn:w\"><![CDATA[{body}]]></w:W>"),
            ),
            "EGOV_IT_202",
        )
        .xmlsec(ke.clone(), false),
    );
    for (nome, uri, xs) in [
        (
            "Reference URI to an external document",
            "http://attacker.example/body.xml",
            None,
        ),
        (
            "Reference URI as an XPointer #xpointer(id('pdd-body'))",
            "#xpointer(id('pdd-body'))",
            Some(true),
        ),
        ("Reference URI empty (the whole document)", "", None),
        ("Reference URI \"#\"", "#", None),
    ] {
        let m = rifirma(
            &s.replace("URI=\"#pdd-body\"", &format!("URI=\"{uri}\"")),
            emilia,
        );
        let mut c = caso(nome, m, "EGOV_IT_202");
        if let Some(ok) = xs {
            c = c.xmlsec(ke.clone(), ok);
        }
        v.push(c);
    }
    v.push(caso(
        "Reference without URI",
        rifirma(&s.replace("URI=\"#pdd-body\"", ""), emilia),
        "EGOV_IT_202",
    ));

    // --- The Security header elsewhere than once, directly in the Header.
    let s = firmato();
    let sec = testo(&s, "<wsse:Security").to_string();
    v.push(caso(
        "wsse:Security moved into the Body",
        dentro(&senza(&s, "<wsse:Security"), "<soapenv:Body", &sec),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "wsse:Security moved into the busta",
        in_fondo(&senza(&s, "<wsse:Security"), "<eGov_IT:Intestazione", &sec),
        "EGOV_IT_002",
    ));
    v.push(caso(
        "wsse:Security moved into another header block",
        dentro(
            &senza(&s, "<wsse:Security"),
            "<soapenv:Header",
            &format!("<w:W xmlns:w=\"urn:w\">{sec}</w:W>"),
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "two wsse:Security headers (the signed one twice)",
        dentro(&s, "<soapenv:Header", &sec),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "a second wsse:Security header, signed by LAZIO",
        dentro(
            &s,
            "<soapenv:Header",
            testo(
                &p.lazio.firma_stretta(&richiesta("EMILIA")),
                "<wsse:Security",
            ),
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "wsse:Security of the 2002 draft namespace",
        s.replace(
            dsig::NS_WSSE,
            "http://schemas.xmlsoap.org/ws/2002/07/secext",
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "ds:Signature as a header block of its own, outside wsse:Security",
        {
            let sig = testo(&s, "<ds:Signature").to_string();
            dentro(
                &senza(&s, "<ds:Signature"),
                "<soapenv:Header",
                &sig.replacen(
                    "<ds:Signature ",
                    &format!("<ds:Signature xmlns:wsse=\"{}\" ", dsig::NS_WSSE),
                    1,
                ),
            )
        },
        "EGOV_IT_202",
    ));

    // --- Algorithms and transforms other than the profile's (signed validly by xmlsec1).
    let s = firmato();
    let t = xmlsec_template(&s);
    let variante = |nome: &'static str, tpl: String, key: &[String], check: Vec<String>| {
        let (m, signed) = xmlsec_firma(&tpl, key, dir, p.xmlsec);
        let c = caso(nome, m, "EGOV_IT_202");
        if signed {
            c.xmlsec(check, true)
        } else {
            c
        }
    };
    v.push(variante(
        "SignatureMethod RSA-SHA1",
        t.replace(
            dsig::RSA_SHA256,
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
        ),
        &kpriv,
        ke.clone(),
    ));
    let hmac = dir.join("hmac.key");
    std::fs::write(&hmac, b"a secret EMILIA never shared").unwrap();
    let khmac = vec!["--hmackey:segreto".to_string(), hmac.display().to_string()];
    v.push(variante(
        "SignatureMethod HMAC-SHA256 with a KeyName",
        sostituito(
            &t.replace(
                dsig::RSA_SHA256,
                "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
            ),
            "<ds:KeyInfo",
            "<ds:KeyInfo><ds:KeyName>segreto</ds:KeyName></ds:KeyInfo>",
        ),
        &khmac,
        khmac.clone(),
    ));
    v.push(caso(
        "SignatureMethod absent",
        rifirma(
            &s.replace(
                &format!("<ds:SignatureMethod Algorithm=\"{}\"/>", dsig::RSA_SHA256),
                "",
            ),
            emilia,
        ),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "SignatureMethod with an empty Algorithm",
        rifirma(&s.replace(dsig::RSA_SHA256, ""), emilia),
        "EGOV_IT_202",
    ));
    v.push(variante(
        "DigestMethod SHA-1",
        t.replace(dsig::SHA256, "http://www.w3.org/2000/09/xmldsig#sha1"),
        &kpriv,
        ke.clone(),
    ));
    v.push(caso(
        "DigestMethod MD5",
        rifirma(
            &s.replace(dsig::SHA256, "http://www.w3.org/2001/04/xmldsig-more#md5"),
            emilia,
        ),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "DigestMethod unknown",
        rifirma(&s.replace(dsig::SHA256, "urn:x-digest"), emilia),
        "EGOV_IT_202",
    ));
    let exc = format!("<ds:Transform Algorithm=\"{}\"/>", dsig::EXC_C14N);
    v.push(variante(
        "Transforms enveloped-signature then exclusive C14N",
        t.replace(
            &exc,
            &format!("<ds:Transform Algorithm=\"{DS}enveloped-signature\"/>{exc}"),
        ),
        &kpriv,
        ke.clone(),
    ));
    v.push(variante(
        "Transform XPath",
        t.replacen(
            &exc,
            &format!("<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath xmlns:soapenv=\"{SOAP}\">ancestor-or-self::soapenv:Body</ds:XPath></ds:Transform>"),
            1,
        ),
        &kpriv,
        ke.clone(),
    ));
    v.push(variante(
        "Transform XSLT",
        t.replacen(
            &exc,
            "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"><xsl:stylesheet xmlns:xsl=\"http://www.w3.org/1999/XSL/Transform\" version=\"1.0\"><xsl:template match=\"/\"><x/></xsl:template></xsl:stylesheet></ds:Transform>",
            1,
        ),
        &kpriv,
        ke.clone(),
    ));
    v.push(variante(
        "no Transforms (inclusive C14N by default)",
        t.replacen(&format!("<ds:Transforms>{exc}</ds:Transforms>"), "", 1),
        &kpriv,
        ke.clone(),
    ));
    v.push(variante(
        "CanonicalizationMethod inclusive C14N",
        t.replace(
            &format!("<ds:CanonicalizationMethod Algorithm=\"{}\"/>", dsig::EXC_C14N),
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>",
        ),
        &kpriv,
        ke.clone(),
    ));
    v.push(variante(
        "CanonicalizationMethod exclusive C14N with comments",
        t.replace(
            &format!(
                "<ds:CanonicalizationMethod Algorithm=\"{}\"/>",
                dsig::EXC_C14N
            ),
            &format!(
                "<ds:CanonicalizationMethod Algorithm=\"{}WithComments\"/>",
                dsig::EXC_C14N
            ),
        ),
        &kpriv,
        ke.clone(),
    ));
    // TOSCANA's registered key is EC: an ECDSA signature under the RSA-SHA256 label.
    v.push(
        caso(
            "ECDSA signature labelled RSA-SHA256 (registered EC certificate)",
            p.toscana.firma_stretta(&richiesta("TOSCANA")),
            "EGOV_IT_202",
        )
        .da(Da::Toscana)
        .xmlsec(
            vec![
                "--pubkey-cert-pem".into(),
                p.toscana.cert.display().to_string(),
            ],
            false,
        ),
    );

    // --- The key: tokens that are not the signing one, or not where they must be.
    let s = firmato();
    let bst_lazio = format!(
        "<wsse:BinarySecurityToken EncodingType=\"{}\" ValueType=\"{}\" wsu:Id=\"altro\">{}</wsse:BinarySecurityToken>",
        dsig::BASE64_BINARY,
        dsig::X509V3,
        token(&p.lazio)
    );
    v.push(caso(
        "KeyInfo pointing to a second token (LAZIO's) while EMILIA signed",
        dentro(&s, "<wsse:Security", &bst_lazio).replace("URI=\"#pdd-token\"", "URI=\"#altro\""),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "token swapped for LAZIO's certificate",
        s.replace(&token(emilia), &token(&p.lazio)),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "SecurityTokenReference to an unknown token",
        s.replace("URI=\"#pdd-token\"", "URI=\"#nessuno\""),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "SecurityTokenReference with a KeyIdentifier instead of a Reference",
        sostituito(
            &s,
            "<wsse:SecurityTokenReference",
            "<wsse:SecurityTokenReference><wsse:KeyIdentifier ValueType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier\">AAAA</wsse:KeyIdentifier></wsse:SecurityTokenReference>",
        ),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "token moved out of wsse:Security into another header",
        {
            let bst = testo(&s, "<wsse:BinarySecurityToken").to_string();
            dentro(
                &senza(&s, "<wsse:BinarySecurityToken"),
                "<soapenv:Header",
                &format!(
                    "<w:W xmlns:w=\"urn:w\" xmlns:wsse=\"{}\" xmlns:wsu=\"{WSU}\">{bst}</w:W>",
                    dsig::NS_WSSE
                ),
            )
        },
        "EGOV_IT_202",
    ));
    v.push(caso(
        "KeyInfo absent",
        senza(&s, "<ds:KeyInfo"),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "KeyInfo with LAZIO's certificate in X509Data while EMILIA signed",
        sostituito(
            &s,
            "<ds:KeyInfo",
            &format!(
                "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
                token(&p.lazio)
            ),
        ),
        "EGOV_IT_202",
    ));
    v.push(caso(
        "token of another ValueType (PKIPath)",
        s.replacen(
            &format!("ValueType=\"{}\" wsu:Id=\"pdd-token\"", dsig::X509V3),
            "ValueType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1\" wsu:Id=\"pdd-token\"",
            1,
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "token that is no certificate",
        s.replace(&token(emilia), "bm90IGEgY2VydGlmaWNhdGU="),
        "EGOV_IT_200",
    ));

    // --- Valid signatures by the wrong certificate.
    let altra_ca = Pki::new();
    for (nome, kp, codice) in [
        (
            "a stranger's self-signed certificate named EMILIA",
            p.pki.make("straniero", "EMILIA", false, 30, 0),
            "EGOV_IT_200",
        ),
        (
            "a certificate named EMILIA from a CA we do not trust",
            altra_ca.make("emilia-altra-ca", "EMILIA", true, 30, 0),
            "EGOV_IT_200",
        ),
        (
            "a certificate from our CA naming LAZIO",
            p.pki.make("lazio-ca", "LAZIO", true, 30, 0),
            "EGOV_IT_200",
        ),
        (
            "a certificate from our CA naming EMILIA, expired",
            p.pki.make("emilia-scaduto", "EMILIA", true, 1, -10),
            "EGOV_IT_200",
        ),
        (
            "a certificate from our CA naming EMILIA, not yet valid",
            p.pki.make("emilia-futuro", "EMILIA", true, 30, 5),
            "EGOV_IT_200",
        ),
        (
            "LAZIO's registered certificate (a busta of EMILIA)",
            p.lazio.clone(),
            "EGOV_IT_201",
        ),
    ] {
        v.push(caso(nome, kp.firma_stretta(&richiesta("EMILIA")), codice));
    }
    v.push(caso(
        "EMILIA signs a busta whose Mittente is LAZIO (sent as EMILIA)",
        emilia.firma_stretta(&richiesta("LAZIO")),
        "EGOV_IT_201",
    ));
    v.push(
        caso(
            "EMILIA signs a busta whose Mittente is LAZIO (sent as LAZIO)",
            emilia.firma_stretta(&richiesta("LAZIO")),
            "EGOV_IT_201",
        )
        .da(Da::Lazio),
    );
    if mtls {
        v.push(
            caso(
                "EMILIA's signed busta relayed by LAZIO's connection",
                firmato(),
                "EGOV_IT_201",
            )
            .da(Da::Lazio),
        );
    }

    // --- Timestamps.
    let now = chrono::Utc::now();
    let cinque = chrono::Duration::minutes(5);
    v.push(caso(
        "Timestamp expired (made 10 minutes ago, 5 minutes' life)",
        firmato_il(
            emilia,
            &richiesta("EMILIA"),
            now - chrono::Duration::minutes(10),
            cinque,
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "Timestamp not yet valid (made 10 minutes from now)",
        firmato_il(
            emilia,
            &richiesta("EMILIA"),
            now + chrono::Duration::minutes(10),
            cinque,
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "Timestamp made an hour ago, Expires in ten years",
        firmato_il(
            emilia,
            &richiesta("EMILIA"),
            now - chrono::Duration::hours(1),
            chrono::Duration::days(3650),
        ),
        "EGOV_IT_200",
    ));
    let s = firmato();
    v.push(caso(
        "Timestamp not covered by the signature",
        rifirma(&senza(&s, "<ds:Reference URI=\"#pdd-ts\""), emilia),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "Timestamp absent",
        rifirma(
            &senza(
                &senza(&s, "<ds:Reference URI=\"#pdd-ts\""),
                "<wsu:Timestamp",
            ),
            emilia,
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "Timestamp Expires moved a day later after signing",
        {
            let exp = testo(&s, "<wsu:Expires").to_string();
            let later = (now + chrono::Duration::days(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            s.replace(&exp, &format!("<wsu:Expires>{later}</wsu:Expires>"))
        },
        "EGOV_IT_202",
    ));
    v.push(caso(
        "two Timestamps",
        dentro(&s, "<wsse:Security", testo(&s, "<wsu:Timestamp")),
        "EGOV_IT_200",
    ));

    // --- Outside the signature.
    v.push(caso(
        "an unsigned error busta (ListaEccezioni) in EMILIA's name",
        in_fondo(
            &richiesta("EMILIA"),
            "<eGov_IT:Intestazione",
            "<eGov_IT:ListaEccezioni><eGov_IT:Eccezione contestoCodifica=\"ErroreIntestazioneMessaggioSPCoop\" codiceEccezione=\"EGOV_IT_101\" rilevanza=\"GRAVE\" posizione=\"Mittente\"/></eGov_IT:ListaEccezioni>",
        ),
        "EGOV_IT_200",
    ));
    v.push(caso(
        "a DOCTYPE with an internal entity in the Body",
        firmato().replacen(
            "<soapenv:Envelope",
            "<!DOCTYPE soapenv:Envelope [<!ENTITY e \"x\">]><soapenv:Envelope",
            1,
        ),
        "EGOV_IT_001",
    ));
    v
}

async fn invia(url: &str, p: &Parti, da: Option<Da>, body: String) -> (u16, String) {
    let mut args = vec!["--cacert".to_string(), p.me.cert.display().to_string()];
    if let Some(da) = da {
        let kp = p.kp(da);
        args.extend([
            "--cert".into(),
            kp.cert.display().to_string(),
            "--key".into(),
            kp.key.display().to_string(),
        ]);
    }
    args.push(url.to_string());
    let (code, status, body) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        curl(&args, body.as_bytes())
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "curl failed: {body}");
    (status, body)
}

async fn tutte_rifiutate(mtls: bool) {
    common::require(common::Peer::Curl);
    let p = Parti::new();
    let gw = common::start(p.config(mtls)).await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());
    let chi = |da: Da| mtls.then_some(da);
    let mut righe = Vec::new();
    let mut errori = Vec::new();
    for c in casi(&p, mtls) {
        let (status, body) = invia(&url, &p, chi(c.da), c.msg.clone()).await;
        let codici = codici(&body);
        let last = gw.gw.store.recent(1).await.unwrap().remove(0);
        let xs = c.xmlsec.as_ref().filter(|_| p.xmlsec).map(|(key, atteso)| {
            let (ok, err) = xmlsec_verifica(&c.msg, key, &p.dir.0);
            (ok, *atteso, err)
        });
        // Refused with an error busta, or a bare Fault when no busta could be read.
        let outcome_atteso = if body.contains("codiceEccezione=") {
            Outcome::ErroreBusta
        } else {
            Outcome::Fault
        };
        righe.push(format!(
            "| {} | {} | {} | {} | {} |",
            c.nome,
            status,
            codici.join(" "),
            posizioni(&body).join(" "),
            match &xs {
                Some((true, ..)) => "valid",
                Some((false, ..)) => "invalid",
                None => "",
            }
        ));
        let mut problemi = Vec::new();
        if status != c.status || codici != [c.codice] {
            problemi.push(format!(
                "answered {status} {codici:?}, expected {} {}",
                c.status, c.codice
            ));
        }
        if last.outcome != outcome_atteso || last.http_status != status {
            problemi.push(format!(
                "recorded as {:?} {}, expected {outcome_atteso:?}",
                last.outcome, last.http_status
            ));
        }
        if let Some((ok, atteso, err)) = xs {
            if ok != atteso {
                problemi.push(format!("xmlsec1 said {ok} ({err}), expected {atteso}"));
            }
        }
        if !problemi.is_empty() {
            errori.push(format!(
                "{}: {}\n  note: {}",
                c.nome,
                problemi.join("; "),
                last.note.unwrap_or_default()
            ));
        }
    }
    eprintln!(
        "forgeries ({}):\n| case | HTTP | code | posizione | xmlsec1 |\n|---|---|---|---|---|\n{}",
        if mtls { "mutual TLS" } else { "signature only" },
        righe.join("\n")
    );
    assert!(errori.is_empty(), "{}", errori.join("\n"));
    // Nothing of any forgery reached the service.
    for codice in [FIRMATO, FALSO] {
        assert!(
            gw.gw
                .store
                .modulo(pdd::modulo::Tipo::Candidatura, codice)
                .await
                .unwrap()
                .is_none(),
            "modulo {codice} stored by a forgery"
        );
    }

    // Controls: a genuine signed busta carrying the forger's modulo is accepted (so the refusals
    // above were the signature's doing), and its replay is refused by the duplicate filter.
    let genuino = p.emilia.firma_stretta(
        &Req::new(
            "EMILIA",
            "MinisteroLavoro",
            "ClicLavoro",
            Some("InvioCandidatura"),
            candidatura(FALSO),
        )
        .xml(),
    );
    let (status, risposta) = invia(&url, &p, chi(Da::Emilia), genuino.clone()).await;
    assert_eq!(status, 200, "{risposta}");
    assert_eq!(
        common::text_of(&risposta, "Tipo_Risposta"),
        Some("OK"),
        "{risposta}"
    );
    assert!(gw
        .gw
        .store
        .modulo(pdd::modulo::Tipo::Candidatura, FALSO)
        .await
        .unwrap()
        .is_some());
    let (status, body) = invia(&url, &p, chi(Da::Emilia), genuino).await;
    assert_eq!(
        (status, codici(&body)),
        (500, vec!["EGOV_IT_110".to_string()])
    );
    let last = gw.gw.store.recent(1).await.unwrap().remove(0);
    assert_eq!(last.outcome, Outcome::Duplicato);
    // Our own signed answer, reflected back to us by the partner: its Destinatario (EMILIA) is not
    // ours, which validation finds before security (GovWay's staging).
    let (status, body) = invia(&url, &p, chi(Da::Emilia), risposta).await;
    let last = gw.gw.store.recent(1).await.unwrap().remove(0);
    eprintln!(
        "| our signed answer reflected back to us | {status} | {} | {} | |",
        codici(&body).join(" "),
        posizioni(&body).join(" ")
    );
    assert_eq!(
        (status, codici(&body), last.outcome),
        (500, vec!["EGOV_IT_102".to_string()], Outcome::ErroreBusta),
        "{}",
        last.note.unwrap_or_default()
    );

    // Not forgeries: variants a standard partner may send, with the signed content intact. They
    // are accepted, so the refusals above are not a matter of the exact bytes pdd writes.
    let firmato = || p.emilia.firma_stretta(&richiesta("EMILIA"));
    let s = firmato();
    let buone = [
        (
            // GovWay's own test suite signs with actor "openspcoop" and mustUnderstand false
            // (busta-egov.md §3.5); only one Security header is accepted, so none can hide.
            "wsse:Security with an actor and mustUnderstand=\"0\"",
            s.replacen(
                "pddsoap:mustUnderstand=\"1\"",
                "pddsoap:actor=\"openspcoop\" pddsoap:mustUnderstand=\"0\"",
                1,
            ),
        ),
        (
            "wsse:Security without mustUnderstand",
            firmato().replacen(" pddsoap:mustUnderstand=\"1\"", "", 1),
        ),
        (
            "a stray element with ds:Id=\"pdd-body\" (not an id), the message untouched",
            dentro(
                &firmato(),
                "<soapenv:Header",
                &format!("<w:D xmlns:w=\"urn:w\" xmlns:ds=\"{DS}\" ds:Id=\"pdd-body\"/>"),
            ),
        ),
        (
            "KeyInfo carrying the certificate in X509Data",
            sostituito(
                &firmato(),
                "<ds:KeyInfo",
                &format!(
                    "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
                    token(&p.emilia)
                ),
            ),
        ),
        (
            "the Body's id as a plain Id attribute, signed so",
            rifirma(
                &firmato().replacen("wsu:Id=\"pdd-body\"", "Id=\"pdd-body\"", 1),
                &p.emilia,
            ),
        ),
    ];
    for (nome, msg) in buone {
        let (status, body) = invia(&url, &p, chi(Da::Emilia), msg).await;
        assert_eq!(status, 200, "{nome}: {body}");
        assert_eq!(
            common::text_of(&body, "Tipo_Risposta"),
            Some("OK"),
            "{nome}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn forgeries_are_refused_over_mutual_tls() {
    tutte_rifiutate(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn forgeries_are_refused_when_the_signature_is_the_only_credential() {
    tutte_rifiutate(false).await;
}
