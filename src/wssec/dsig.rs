//! XML signatures in a WS-Security header (OASIS WSS 1.0/1.1, X.509 token profile):
//! exclusive C14N, RSA-SHA256, SHA-256 digests. Signing adds a `wsse:Security` header with a
//! BinarySecurityToken, a Timestamp and a Signature over the Body, the busta and the Timestamp.
//! Verification checks that every reference resolves to exactly one element, that the elements
//! the gateway processes are the ones signed (no wrapping), the digests, the signature and the
//! Timestamp; it returns the signer's certificate for the caller to judge.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{LazyLock, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;

use super::c14n::{self, Target};
use crate::egov::{NS_BUSTA, NS_WSU};
use crate::mime::Parte;
use crate::soap::{Envelope, SOAP11_NS};
use crate::xml::{Element, Identificato, Limits};

pub const NS_WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// The WS-Security SwA profile's transform over an attachment's content (SwA 1.1 §5.3.2).
pub const SWA_CONTENT: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform";
pub const X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
pub const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// What went wrong with a signature (the gateway maps each to its EGOV_IT code, busta-egov.md
/// §2.1, §3.5).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FirmaError {
    /// EGOV_IT_200: the security header is missing or does not follow the policy.
    #[error("politica di sicurezza: {0}")]
    Politica(String),
    /// EGOV_IT_117: the busta header is not signed, or its signature is invalid.
    #[error("firma dell'intestazione non valida: {0}")]
    Intestazione(String),
    /// EGOV_IT_202: the XML signature is invalid (body, references, signature value).
    #[error("firma XML non valida: {0}")]
    Xml(String),
    /// Our own input could not be signed (a local error, not a partner's).
    #[error("impossibile firmare: {0}")]
    Firma(String),
}

/// Which part of the busta is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Copertura {
    /// `eGov_IT:IntestazioneMessaggio` (as the GovWay test suite signs).
    #[serde(rename = "intestazione_messaggio")]
    IntestazioneMessaggio,
    /// The whole `eGov_IT:Intestazione`, lists included: what a WSS4J peer requiring the
    /// `Intestazione` header checks for, and what covers Trasmissioni and Eccezioni too.
    #[default]
    Intestazione,
}

fn err_firma(e: impl std::fmt::Display) -> FirmaError {
    FirmaError::Firma(e.to_string())
}

/// The qualified name at the start tag that begins at `start`.
fn qname_at(src: &str, start: usize) -> &str {
    let rest = &src[start + 1..];
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The value of an attribute written in the start tag at `start` (as written, not resolved).
fn start_tag_text(src: &str, start: usize) -> &str {
    let end = src[start..].find('>').map_or(src.len(), |e| start + e);
    &src[start..end]
}

/// The busta element a signature must cover.
fn busta_target(env: &Envelope<'_>, copertura: Copertura) -> Option<usize> {
    let h = env
        .header_blocks
        .iter()
        .find(|b| b.is(NS_BUSTA, "Intestazione"))?;
    match copertura {
        Copertura::Intestazione => Some(h.span.start),
        Copertura::IntestazioneMessaggio => h
            .children
            .iter()
            .find(|c| c.is(NS_BUSTA, "IntestazioneMessaggio"))
            .map(|c| c.span.start),
    }
}

fn body_start(env: &Envelope<'_>) -> usize {
    env.body.start
}

/// Signs a SOAP message: adds `wsu:Id`s where needed and a `wsse:Security` header first in the
/// Header. Returns the signed message.
pub fn firma(
    msg: &str,
    key: &PKey<Private>,
    cert: &X509,
    now: DateTime<Utc>,
    ttl: Duration,
    copertura: Copertura,
) -> Result<String, FirmaError> {
    firma_con_allegati(msg, key, cert, now, ttl, copertura, &[])
}

/// The digest input of an attachment under the SwA profile's content transform (SwA 1.1
/// §5.4): XML content canonicalised (exclusive C14N of its root element), other text with its
/// line ends made CRLF, anything else as it is.
pub fn contenuto_allegato(p: &Parte) -> Result<Vec<u8>, String> {
    let media = p.media();
    if media == "text/xml" || media == "application/xml" || media.ends_with("+xml") {
        let testo = std::str::from_utf8(&p.contenuto)
            .map_err(|_| format!("allegato {} XML non UTF-8", p.nome(0)))?;
        let radice = radice_xml(testo)
            .ok_or_else(|| format!("allegato {}: nessun elemento XML", p.nome(0)))?;
        return c14n::canonicalize_one(testo, radice, &[])
            .map(String::into_bytes)
            .map_err(|e| format!("allegato {}: {e}", p.nome(0)));
    }
    if media.starts_with("text/") {
        let mut out = Vec::with_capacity(p.contenuto.len() + 16);
        let c = &p.contenuto;
        for (i, &b) in c.iter().enumerate() {
            match b {
                b'\r' => {
                    out.extend_from_slice(b"\r\n");
                }
                b'\n' if i > 0 && c[i - 1] == b'\r' => {}
                b'\n' => out.extend_from_slice(b"\r\n"),
                _ => out.push(b),
            }
        }
        return Ok(out);
    }
    Ok(p.contenuto.clone())
}

/// Where the root element of a document starts: past its declaration, comments, processing
/// instructions and DOCTYPE.
fn radice_xml(t: &str) -> Option<usize> {
    let mut i = 0;
    loop {
        let lt = i + t[i..].find('<')?;
        let resto = &t[lt..];
        if resto.starts_with("<?") {
            i = lt + resto.find("?>")? + 2;
        } else if resto.starts_with("<!--") {
            i = lt + resto.find("-->")? + 3;
        } else if resto.starts_with("<!") {
            i = lt + resto.find('>')? + 1;
        } else {
            return Some(lt);
        }
    }
}

/// [`firma`], the signature also covering `allegati` (the SOAP with Attachments parts) by
/// `cid:` references with the SwA profile's content transform. Each must have a Content-ID.
pub fn firma_con_allegati(
    msg: &str,
    key: &PKey<Private>,
    cert: &X509,
    now: DateTime<Utc>,
    ttl: Duration,
    copertura: Copertura,
    allegati: &[Parte],
) -> Result<String, FirmaError> {
    let mut rif_allegati = String::new();
    for a in allegati {
        let id = a.content_id.as_deref().ok_or_else(|| {
            FirmaError::Firma(format!("l'allegato {} non ha Content-ID", a.nome(0)))
        })?;
        let d = openssl::sha::sha256(&contenuto_allegato(a).map_err(FirmaError::Firma)?);
        rif_allegati.push_str(&format!(
            "<ds:Reference URI=\"cid:{}\"><ds:Transforms><ds:Transform Algorithm=\"{SWA_CONTENT}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>{}</ds:DigestValue></ds:Reference>",
            crate::xml::escape_attr(id),
            B64.encode(d)
        ));
    }
    let env = Envelope::parse(msg.as_bytes(), Limits::default()).map_err(err_firma)?;
    let header = env
        .header
        .clone()
        .ok_or_else(|| FirmaError::Firma("il messaggio non ha un Header".into()))?;
    if env.offset != 0 {
        return Err(FirmaError::Firma("byte order mark".into()));
    }
    let busta = busta_target(&env, copertura)
        .ok_or_else(|| FirmaError::Firma("nessuna busta e-Gov da firmare".into()))?;
    let body = body_start(&env);

    // Ids: reuse what is there, else add ours (at offsets into `msg`, applied in one copy below).
    let mut inserts: Vec<(usize, String)> = Vec::new();
    let mut scelti = Vec::new();
    // The elements given an id of ours: (where they start in `msg`, the id).
    let mut nostri: Vec<(usize, &str)> = Vec::new();
    for (start, wanted) in [(body, "pdd-body"), (busta, "pdd-busta")] {
        let tag = start_tag_text(msg, start);
        // A wsu:Id already there, under whatever prefix: another would be the same attribute.
        let esistente = env.ids.iter().find(|x| x.start == start && x.wsu);
        match esistente {
            Some(x) => scelti.push(x.id.to_string()),
            None => {
                let q = qname_at(msg, start);
                // The wsu prefix where the tag binds it to the utility namespace or not at all;
                // where it binds it to another, a prefix of ours.
                let giusto = ['"', '\'']
                    .iter()
                    .any(|c| tag.contains(&format!("xmlns:wsu={c}{NS_WSU}{c}")));
                let id = if giusto {
                    format!(" wsu:Id=\"{wanted}\"")
                } else if !tag.contains("xmlns:wsu=") {
                    format!(" xmlns:wsu=\"{NS_WSU}\" wsu:Id=\"{wanted}\"")
                } else {
                    format!(" xmlns:pddwsu=\"{NS_WSU}\" pddwsu:Id=\"{wanted}\"")
                };
                inserts.push((start + 1 + q.len(), id));
                nostri.push((start, wanted));
                scelti.push(wanted.to_string());
            }
        }
    }
    let created = now.to_rfc3339_opts(SecondsFormat::Millis, true);
    let expires = (now + ttl).to_rfc3339_opts(SecondsFormat::Millis, true);
    let token = B64.encode(cert.to_der().map_err(err_firma)?);
    let reference = |uri: &str, n: usize| {
        let uri = crate::xml::escape_attr(uri);
        format!(
            "<ds:Reference URI=\"#{uri}\"><ds:Transforms><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>@@DIGEST{n}@@</ds:DigestValue></ds:Reference>"
        )
    };
    let security = format!(
        "<wsse:Security xmlns:wsse=\"{NS_WSSE}\" xmlns:wsu=\"{NS_WSU}\" xmlns:pddsoap=\"{SOAP11_NS}\" pddsoap:mustUnderstand=\"1\">\
<wsse:BinarySecurityToken EncodingType=\"{BASE64_BINARY}\" ValueType=\"{X509V3}\" wsu:Id=\"pdd-token\">{token}</wsse:BinarySecurityToken>\
<wsu:Timestamp wsu:Id=\"pdd-ts\"><wsu:Created>{created}</wsu:Created><wsu:Expires>{expires}</wsu:Expires></wsu:Timestamp>\
<ds:Signature xmlns:ds=\"{NS_DS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/><ds:SignatureMethod Algorithm=\"{RSA_SHA256}\"/>{}{}{}{rif_allegati}</ds:SignedInfo>\
<ds:SignatureValue>@@SIGNATURE@@</ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI=\"#pdd-token\" ValueType=\"{X509V3}\"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature></wsse:Security>",
        reference(&scelti[0], 0),
        reference(&scelti[1], 1),
        reference("pdd-ts", 2),
    );
    // The Security header goes first in the Header: right after the Header's start tag.
    let header_content = msg[header.start..].find('>').map(|i| header.start + i + 1);
    let Some(at) = header_content.filter(|_| !start_tag_text(msg, header.start).ends_with('/'))
    else {
        return Err(FirmaError::Firma("Header vuoto in forma abbreviata".into()));
    };
    inserts.push((at, security));
    inserts.sort_by_key(|(p, _)| *p);
    // One copy of the message with the insertions, rather than a memmove per insertion.
    let mut out = String::with_capacity(
        msg.len() + inserts.iter().map(|(_, s)| s.len()).sum::<usize>() + 512,
    );
    let mut from = 0;
    for (p, s) in &inserts {
        out.push_str(&msg[from..*p]);
        out.push_str(s);
        from = *p;
    }
    out.push_str(&msg[from..]);
    // The ids inserted inside the Body and busta start tags come after the Header's start tag,
    // so the Security header begins exactly at `at`: its placeholders are searched from there.
    let security_at = at;

    // The ids of the signed message: the input's (from its parse), moved by what was inserted
    // before them, and ours. Each reference must name exactly one element of it.
    let sposta = |p: usize| {
        p + inserts
            .iter()
            .take_while(|(q, _)| *q <= p)
            .map(|(_, s)| s.len())
            .sum::<usize>()
    };
    let mut all: Vec<Identificato> = env
        .ids
        .iter()
        .map(|x| Identificato {
            start: sposta(x.start),
            ..x.clone()
        })
        .collect();
    for &(start, id) in &nostri {
        all.push(Identificato {
            id: id.into(),
            start: sposta(start),
            wsu: true,
        });
    }
    for (tag, id) in [
        ("<wsse:BinarySecurityToken ", "pdd-token"),
        ("<wsu:Timestamp ", "pdd-ts"),
    ] {
        let dove = out[security_at..]
            .find(tag)
            .ok_or_else(|| FirmaError::Firma(tag.into()))?;
        all.push(Identificato {
            id: id.into(),
            start: security_at + dove,
            wsu: true,
        });
    }
    // Digests of the three references, in one canonicalization pass.
    let starts = [
        unico(&all, &scelti[0])?,
        unico(&all, &scelti[1])?,
        unico(&all, "pdd-ts")?,
    ];
    let targets: Vec<Target> = starts
        .iter()
        .map(|&s| Target {
            start: s,
            inclusive: vec![],
        })
        .collect();
    let canon = c14n::canonicalize(&out, &targets).map_err(err_firma)?;
    for (n, c) in canon.iter().enumerate() {
        let d = openssl::sha::sha256(c.as_bytes());
        sostituisci(
            &mut out,
            security_at,
            &format!("@@DIGEST{n}@@"),
            &B64.encode(d),
        )?;
    }
    // The signature over the canonical SignedInfo.
    let si = out[security_at..]
        .find("<ds:SignedInfo>")
        .map(|i| security_at + i)
        .ok_or_else(|| FirmaError::Firma("SignedInfo".into()))?;
    let si_fine = out[si..]
        .find("</ds:SignedInfo>")
        .map(|i| si + i + "</ds:SignedInfo>".len())
        .ok_or_else(|| FirmaError::Firma("SignedInfo".into()))?;
    // SignedInfo is ours and uses the ds prefix alone: canonicalized inside an element that
    // declares it, as it stands in the message, without reading the message up to it again.
    let apertura = format!("<ds:Signature xmlns:ds=\"{NS_DS}\">");
    let solo = format!("{apertura}{}</ds:Signature>", &out[si..si_fine]);
    let canon_si = c14n::canonicalize_one(&solo, apertura.len(), &[]).map_err(err_firma)?;
    let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(err_firma)?;
    signer.update(canon_si.as_bytes()).map_err(err_firma)?;
    let sig = signer.sign_to_vec().map_err(err_firma)?;
    sostituisci(&mut out, security_at, "@@SIGNATURE@@", &B64.encode(sig))?;
    Ok(out)
}

/// Replaces the first `placeholder` at or after `from` in place (no copy of the message).
fn sostituisci(
    out: &mut String,
    from: usize,
    placeholder: &str,
    value: &str,
) -> Result<(), FirmaError> {
    let at = out[from..]
        .find(placeholder)
        .map(|i| from + i)
        .ok_or_else(|| FirmaError::Firma(placeholder.into()))?;
    out.replace_range(at..at + placeholder.len(), value);
    Ok(())
}

/// The one element carrying `id`.
fn unico(all: &[Identificato], id: &str) -> Result<usize, FirmaError> {
    let mut m = all.iter().filter(|x| x.id == id);
    match (m.next(), m.next()) {
        (Some(x), None) => Ok(x.start),
        (None, _) => Err(FirmaError::Xml(format!("nessun elemento con Id '{id}'"))),
        (Some(_), Some(_)) => Err(FirmaError::Xml(format!("più elementi con Id '{id}'"))),
    }
}

/// What a valid signature says.
#[derive(Debug, Clone)]
pub struct Firmato {
    /// The signer's certificate, from the BinarySecurityToken.
    pub cert: X509,
    pub created: Option<DateTime<Utc>>,
    pub expires: Option<DateTime<Utc>>,
    /// The attachments the signature covers (indices into those given to
    /// [`verifica_con_allegati`]).
    pub allegati: Vec<usize>,
}

/// How strictly to check.
#[derive(Debug, Clone, Copy)]
pub struct Regole {
    pub now: DateTime<Utc>,
    /// Clock skew tolerated on the Timestamp.
    pub tolleranza: Duration,
    /// Lifetime assumed when the Timestamp has no Expires, and the longest accepted: a
    /// Timestamp created longer ago is stale whatever its Expires says.
    pub durata_massima: Duration,
    pub copertura: Copertura,
}

fn child<'a>(e: &'a Element, ns: &str, local: &str) -> Option<&'a Element> {
    e.children.iter().find(|c| c.is(ns, local))
}

fn children<'a>(
    e: &'a Element,
    ns: &'a str,
    local: &'a str,
) -> impl Iterator<Item = &'a Element> + 'a {
    e.children.iter().filter(move |c| c.is(ns, local))
}

fn algorithm(e: Option<&Element>) -> &str {
    e.and_then(|e| e.attr("Algorithm")).unwrap_or("")
}

/// The PrefixList of an exc-c14n method's InclusiveNamespaces.
fn inclusive(method: &Element) -> Vec<String> {
    method
        .children
        .iter()
        .find(|c| c.local == "InclusiveNamespaces")
        .and_then(|c| c.attr("PrefixList"))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Verifies the WS-Security signature of a message whose envelope has been parsed.
pub fn verifica(src: &str, env: &Envelope<'_>, r: &Regole) -> Result<Firmato, FirmaError> {
    verifica_con_allegati(src, env, r, &[])
}

/// [`verifica`] for a SOAP with Attachments message: `cid:` references are checked against
/// `allegati` (SwA profile, content transform); which ones are covered is in the answer.
pub fn verifica_con_allegati(
    src: &str,
    env: &Envelope<'_>,
    r: &Regole,
    allegati: &[Parte],
) -> Result<Firmato, FirmaError> {
    let pol = |m: &str| FirmaError::Politica(m.to_string());
    let xmlerr = |m: String| FirmaError::Xml(m);
    // Exactly one Security header, a direct child of the Header.
    let mut sec = env
        .header_blocks
        .iter()
        .filter(|b| b.is(NS_WSSE, "Security"));
    let security = match (sec.next(), sec.next()) {
        (Some(s), None) => s,
        (None, _) => return Err(pol("header wsse:Security assente")),
        (Some(_), Some(_)) => return Err(pol("più di un header wsse:Security")),
    };
    let mut sigs = children(security, NS_DS, "Signature");
    let signature = match (sigs.next(), sigs.next()) {
        (Some(s), None) => s,
        (None, _) => {
            return Err(FirmaError::Xml(
                "ds:Signature assente nell'header wsse:Security".into(),
            ))
        }
        (Some(_), Some(_)) => return Err(FirmaError::Xml("più di una ds:Signature".into())),
    };
    let mut tss = children(security, NS_WSU, "Timestamp");
    let ts = match (tss.next(), tss.next()) {
        (Some(t), None) => t,
        (None, _) => return Err(pol("wsu:Timestamp assente")),
        (Some(_), Some(_)) => return Err(pol("più di un wsu:Timestamp")),
    };
    let si =
        child(signature, NS_DS, "SignedInfo").ok_or_else(|| xmlerr("SignedInfo assente".into()))?;
    let cm = child(si, NS_DS, "CanonicalizationMethod");
    if algorithm(cm) != EXC_C14N {
        return Err(xmlerr(format!(
            "canonicalizzazione non ammessa: '{}'",
            algorithm(cm)
        )));
    }
    let sm = algorithm(child(si, NS_DS, "SignatureMethod"));
    if sm != RSA_SHA256 {
        return Err(xmlerr(format!("algoritmo di firma non ammesso: '{sm}'")));
    }

    // Resolve every reference to exactly one element.
    let all_ids = &env.ids;
    let mut refs: Vec<(usize, Vec<String>, Vec<u8>)> = Vec::new();
    let mut coperti: Vec<usize> = Vec::new();
    for rf in children(si, NS_DS, "Reference") {
        let uri = rf.attr("URI").unwrap_or("");
        if uri.starts_with("cid:") {
            coperti.push(verifica_allegato(rf, uri, allegati)?);
            continue;
        }
        let id = uri
            .strip_prefix('#')
            .filter(|i| !i.is_empty())
            .ok_or_else(|| xmlerr(format!("riferimento non ammesso: URI '{uri}'")))?;
        let mut m = all_ids.iter().filter(|x| x.id == id);
        let start = match (m.next(), m.next()) {
            (Some(x), None) => x.start,
            (None, _) => {
                return Err(xmlerr(format!(
                    "il riferimento #{id} non indica alcun elemento"
                )))
            }
            (Some(_), Some(_)) => return Err(xmlerr(format!("più elementi con Id '{id}'"))),
        };
        let transforms: Vec<&Element> = child(rf, NS_DS, "Transforms")
            .map(|t| children(t, NS_DS, "Transform").collect())
            .unwrap_or_default();
        let [t] = transforms.as_slice() else {
            return Err(xmlerr(format!(
                "il riferimento #{id} deve avere una sola trasformazione (exc-c14n)"
            )));
        };
        if algorithm(Some(t)) != EXC_C14N {
            return Err(xmlerr(format!(
                "trasformazione non ammessa: '{}'",
                algorithm(Some(t))
            )));
        }
        let digest = digest_atteso(rf, &format!("#{id}"))?;
        refs.push((start, inclusive(t), digest));
    }

    // What the gateway processes must be what was signed.
    let covered = |start: usize| refs.iter().any(|(s, _, _)| *s == start);
    if !covered(body_start(env)) {
        return Err(xmlerr("il Body del messaggio non è firmato".into()));
    }
    let intestazione = env
        .header_blocks
        .iter()
        .find(|b| b.is(NS_BUSTA, "Intestazione"))
        .ok_or_else(|| FirmaError::Intestazione("busta e-Gov assente".into()))?;
    let messaggio = intestazione
        .children
        .iter()
        .find(|c| c.is(NS_BUSTA, "IntestazioneMessaggio"))
        .map(|c| c.span.start);
    let header_ok = covered(intestazione.span.start)
        || (r.copertura == Copertura::IntestazioneMessaggio && messaggio.is_some_and(covered));
    if !header_ok {
        return Err(FirmaError::Intestazione(match r.copertura {
            Copertura::Intestazione => "l'Intestazione e-Gov non è firmata".into(),
            Copertura::IntestazioneMessaggio => {
                "l'IntestazioneMessaggio e-Gov non è firmata".into()
            }
        }));
    }
    if !covered(ts.span.start) {
        return Err(pol("il Timestamp non è firmato"));
    }

    // Digests, and SignedInfo for the signature value (last), in one canonicalization pass.
    let mut targets: Vec<Target> = refs
        .iter()
        .map(|(s, incl, _)| Target {
            start: *s,
            inclusive: incl.clone(),
        })
        .collect();
    targets.push(Target {
        start: si.span.start,
        inclusive: inclusive(cm.unwrap_or(si)),
    });
    let mut canon = c14n::canonicalize(src, &targets)
        .map_err(|e| xmlerr(format!("canonicalizzazione: {e}")))?;
    let canon_si = canon
        .pop()
        .ok_or_else(|| xmlerr("canonicalizzazione di SignedInfo".into()))?;
    for ((start, _, digest), c) in refs.iter().zip(&canon) {
        if openssl::sha::sha256(c.as_bytes()).as_slice() != digest.as_slice() {
            let msg = format!(
                "il digest dell'elemento {} non corrisponde",
                qname_at(src, *start)
            );
            return Err(
                // A changed Timestamp is a changed message, as for the Body (EGOV_IT_202).
                if *start == intestazione.span.start || Some(*start) == messaggio {
                    FirmaError::Intestazione(msg)
                } else {
                    FirmaError::Xml(msg)
                },
            );
        }
    }

    // The token: a BinarySecurityToken of this Security header, referenced from KeyInfo.
    let cert = token(security, signature)?;

    // The signature value over the canonical SignedInfo.
    let sv = child(signature, NS_DS, "SignatureValue")
        .map(|s| s.text.split_whitespace().collect::<String>())
        .unwrap_or_default();
    let sig = B64
        .decode(sv)
        .map_err(|_| xmlerr("SignatureValue non è base64".into()))?;
    let key = cert
        .public_key()
        .map_err(|e| xmlerr(format!("chiave del certificato: {e}")))?;
    // SignatureMethod is RSA-SHA256, but openssl's Verifier checks whatever the key is: with an
    // EC (or DSA) certificate it would accept an ECDSA signature under the RSA label
    // (tests/forgery.rs, "ECDSA signature labelled RSA-SHA256").
    if key.id() != openssl::pkey::Id::RSA {
        return Err(xmlerr(format!(
            "la chiave del certificato non è RSA, come {RSA_SHA256} richiede"
        )));
    }
    let mut v = Verifier::new(MessageDigest::sha256(), &key).map_err(|e| xmlerr(e.to_string()))?;
    v.update(canon_si.as_bytes())
        .map_err(|e| xmlerr(e.to_string()))?;
    if !v.verify(&sig).unwrap_or(false) {
        return Err(xmlerr("il valore della firma non corrisponde".into()));
    }

    // Freshness.
    let created = child(ts, NS_WSU, "Created").and_then(|c| parse_time(&c.text));
    let expires = child(ts, NS_WSU, "Expires").and_then(|c| parse_time(&c.text));
    let Some(c) = created else {
        return Err(pol("wsu:Timestamp senza Created valido"));
    };
    if c > r.now + r.tolleranza {
        return Err(pol(&format!("il Timestamp è nel futuro ({c})")));
    }
    let limit = expires.unwrap_or(c + r.durata_massima);
    if limit + r.tolleranza < r.now {
        return Err(pol(&format!("il Timestamp è scaduto ({limit})")));
    }
    // Whatever Expires the signer wrote, a Timestamp created longer ago than the lifetime we
    // allow is stale, as WSS4J (GovWay's engine) checks Created against its timeToLive: else a
    // captured message stays valid for years where no duplicate filter runs
    // (tests/forgery.rs, "Timestamp made an hour ago, Expires in ten years").
    if c + r.durata_massima + r.tolleranza < r.now {
        return Err(pol(&format!(
            "il Timestamp è stato creato più di {} s fa ({c})",
            r.durata_massima.num_seconds()
        )));
    }
    Ok(Firmato {
        cert,
        created,
        expires,
        allegati: coperti,
    })
}

/// The digest a reference declares (SHA-256 only), `nome` naming it in errors.
fn digest_atteso(rf: &Element, nome: &str) -> Result<Vec<u8>, FirmaError> {
    let dm = algorithm(child(rf, NS_DS, "DigestMethod"));
    if dm != SHA256 {
        return Err(FirmaError::Xml(format!(
            "algoritmo di digest non ammesso: '{dm}'"
        )));
    }
    let dv = child(rf, NS_DS, "DigestValue")
        .map(|d| d.text.split_whitespace().collect::<String>())
        .unwrap_or_default();
    B64.decode(dv)
        .map_err(|_| FirmaError::Xml(format!("DigestValue del riferimento {nome} non è base64")))
}

/// One `cid:` reference: the attachment it names, its transform and digest.
fn verifica_allegato(rf: &Element, uri: &str, allegati: &[Parte]) -> Result<usize, FirmaError> {
    let xmlerr = |m: String| FirmaError::Xml(m);
    let i = allegati
        .iter()
        .position(|p| p.indicata_da(uri))
        .ok_or_else(|| xmlerr(format!("il riferimento {uri} non indica alcun allegato")))?;
    let transforms: Vec<&Element> = child(rf, NS_DS, "Transforms")
        .map(|t| children(t, NS_DS, "Transform").collect())
        .unwrap_or_default();
    match transforms.as_slice() {
        [t] if algorithm(Some(t)) == SWA_CONTENT => {}
        _ => {
            return Err(xmlerr(format!(
                "il riferimento {uri} deve avere la sola trasformazione {SWA_CONTENT}"
            )))
        }
    }
    let atteso = digest_atteso(rf, uri)?;
    let contenuto = contenuto_allegato(&allegati[i]).map_err(xmlerr)?;
    if openssl::sha::sha256(&contenuto).as_slice() != atteso.as_slice() {
        return Err(xmlerr(format!(
            "il digest dell'allegato {uri} non corrisponde"
        )));
    }
    Ok(i)
}

fn token(security: &Element, signature: &Element) -> Result<X509, FirmaError> {
    let ki = child(signature, NS_DS, "KeyInfo")
        .ok_or_else(|| FirmaError::Xml("KeyInfo assente".into()))?;
    // Either a reference to a BinarySecurityToken, or the certificate itself in X509Data.
    if let Some(str_) = child(ki, NS_WSSE, "SecurityTokenReference") {
        let uri = child(str_, NS_WSSE, "Reference")
            .and_then(|r| r.attr("URI"))
            .and_then(|u| u.strip_prefix('#'))
            .ok_or_else(|| FirmaError::Xml("SecurityTokenReference senza riferimento".into()))?;
        let mut m = children(security, NS_WSSE, "BinarySecurityToken")
            .filter(|t| t.attr_ns(NS_WSU, "Id") == Some(uri));
        let t = match (m.next(), m.next()) {
            (Some(t), None) => t,
            _ => {
                return Err(FirmaError::Xml(format!(
                    "BinarySecurityToken '{uri}' assente o ripetuto"
                )))
            }
        };
        if t.attr("ValueType") != Some(X509V3) {
            return Err(FirmaError::Politica(
                "il token non è un certificato X.509 v3".into(),
            ));
        }
        return der(&t.text);
    }
    if let Some(c) = child(ki, NS_DS, "X509Data").and_then(|d| child(d, NS_DS, "X509Certificate")) {
        return der(&c.text);
    }
    Err(FirmaError::Xml("KeyInfo senza certificato".into()))
}

/// Parsed certificates by their DER bytes. OpenSSL 3 decodes a certificate's public key
/// through its provider decoders under global locks (~100 µs a message), and a partner sends the
/// same certificate every time. Only the parsing is cached: every check on the certificate
/// (dates, chain, whose it is) still runs on each message, as they depend on `now` and on
/// the configuration. Bounded, so certificates sent by anyone cannot grow it.
static CERTIFICATI: LazyLock<Mutex<HashMap<Vec<u8>, X509>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
const CERTIFICATI_MAX: usize = 64;

fn der(b64: &str) -> Result<X509, FirmaError> {
    let bytes = B64
        .decode(b64.split_whitespace().collect::<String>())
        .map_err(|_| FirmaError::Politica("certificato non in base64".into()))?;
    // A poisoned lock only means another thread panicked while holding it: the map is intact.
    let cached = CERTIFICATI
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&bytes)
        .cloned();
    if let Some(c) = cached {
        return Ok(c);
    }
    let cert = X509::from_der(&bytes)
        .map_err(|e| FirmaError::Politica(format!("certificato non leggibile: {e}")))?;
    let mut map = CERTIFICATI.lock().unwrap_or_else(|e| e.into_inner());
    if map.len() >= CERTIFICATI_MAX {
        // Any entry will do: the partners' certificates come back at their next message.
        if let Some(k) = map.keys().next().cloned() {
            map.remove(&k);
        }
    }
    map.insert(bytes, cert.clone());
    Ok(cert)
}

/// Where a signed element starts, for tests and tools.
pub fn span_of(src: &str, id: &str) -> Option<Range<usize>> {
    let env = Envelope::parse(src.as_bytes(), Limits::default()).ok()?;
    let start = unico(&env.ids, id).ok()?;
    let end = src[start..].find('>').map(|e| start + e + 1)?;
    Some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::certs::{certificato, rsa_key, Richiesta, Uso};

    const REQ: &str = include_str!("../../examples/richiesta-candidatura.xml");

    struct Firmatario {
        key: PKey<Private>,
        cert: X509,
    }

    fn sign(msg: &str, f: &Firmatario, c: Copertura) -> String {
        firma(msg, &f.key, &f.cert, now(), Duration::minutes(5), c).unwrap()
    }

    fn signer() -> Firmatario {
        let key = rsa_key().unwrap();
        let cert = certificato(
            &Richiesta {
                cn: "EMILIA",
                san: &[],
                days: 10,
                from_days: 0,
                uso: Uso::Gateway,
            },
            &key,
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        Firmatario { key, cert }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T08:00:30Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn rules() -> Regole {
        Regole {
            now: now(),
            tolleranza: Duration::seconds(60),
            durata_massima: Duration::minutes(5),
            copertura: Copertura::IntestazioneMessaggio,
        }
    }

    /// A Body that already carries a wsu:Id, under a prefix of its own, keeps it and is
    /// referenced by it: a second wsu:Id on the same element would be a duplicate attribute.
    #[test]
    fn an_existing_wsu_id_under_another_prefix_is_reused() {
        let f = signer();
        let msg = REQ.replacen(
            "<soapenv:Body>",
            &format!("<soapenv:Body xmlns:u=\"{NS_WSU}\" u:Id=\"corpo\">"),
            1,
        );
        let signed = sign(&msg, &f, Copertura::Intestazione);
        let body = &signed[signed.find("<soapenv:Body").unwrap()..];
        let tag = &body[..body.find('>').unwrap()];
        assert!(!tag.contains("wsu:Id"), "{tag}");
        assert!(signed.contains("URI=\"#corpo\""));
        check(&signed).unwrap();
        // The wsu prefix bound to another namespace on the Body: its wsu:Id is no id of ours,
        // and ours goes under a prefix of its own.
        let msg = REQ.replacen(
            "<soapenv:Body>",
            "<soapenv:Body xmlns:wsu=\"urn:altro\" wsu:Id=\"x\">",
            1,
        );
        let signed = sign(&msg, &f, Copertura::Intestazione);
        assert!(signed.contains("pddwsu:Id=\"pdd-body\""));
        check(&signed).unwrap();
    }

    fn check(msg: &str) -> Result<Firmato, FirmaError> {
        let env = Envelope::parse(msg.as_bytes(), Limits::default()).unwrap();
        verifica(msg, &env, &rules())
    }

    #[test]
    fn attachments_signed_by_cid_then_checked() {
        let f = signer();
        let allegati = vec![
            Parte::nuova("pdf@x", "application/pdf", b"%PDF-1.4 \x00\xff".to_vec()),
            Parte::nuova(
                "doc@x",
                "text/xml",
                b"<?xml version=\"1.0\"?>\n<a  b='1'/>".to_vec(),
            ),
            Parte::nuova("txt@x", "text/plain", b"riga\nriga".to_vec()),
        ];
        let signed = firma_con_allegati(
            REQ,
            &f.key,
            &f.cert,
            now(),
            Duration::minutes(5),
            Copertura::Intestazione,
            &allegati,
        )
        .unwrap();
        let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
        let ok = verifica_con_allegati(&signed, &env, &rules(), &allegati).unwrap();
        assert_eq!(ok.allegati, [0, 1, 2]);
        // The same XML differently written, and the text with CRLF, digest the same.
        let mut uguali = allegati.clone();
        uguali[1].contenuto = b"<a b=\"1\"></a>".to_vec();
        uguali[2].contenuto = b"riga\r\nriga".to_vec();
        verifica_con_allegati(&signed, &env, &rules(), &uguali).unwrap();
        // One octet changed, or a part missing: EGOV_IT_202's error.
        let mut cambiato = allegati.clone();
        cambiato[0].contenuto[0] = b'X';
        let e = verifica_con_allegati(&signed, &env, &rules(), &cambiato).unwrap_err();
        assert!(
            matches!(&e, FirmaError::Xml(m) if m.contains("cid:pdf@x")),
            "{e}"
        );
        let e = verifica_con_allegati(&signed, &env, &rules(), &allegati[1..]).unwrap_err();
        assert!(
            matches!(&e, FirmaError::Xml(m) if m.contains("non indica")),
            "{e}"
        );
        // Without attachments given, a message signed without any verifies as before.
        let plain = sign(REQ, &f, Copertura::Intestazione);
        assert!(check(&plain).unwrap().allegati.is_empty());
    }

    #[test]
    fn sign_then_verify() {
        let f = signer();
        let signed = sign(REQ, &f, Copertura::IntestazioneMessaggio);
        let ok = check(&signed).unwrap();
        assert_eq!(ok.cert.to_der().unwrap(), f.cert.to_der().unwrap());
        // The message still reads as the same busta request.
        let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
        assert!(env
            .header_blocks
            .iter()
            .any(|b| b.is(NS_BUSTA, "Intestazione")));
        // Signing the whole Intestazione works as well.
        let whole = sign(REQ, &f, Copertura::Intestazione);
        check(&whole).unwrap();
    }

    #[test]
    fn tampering_is_refused_with_the_right_code() {
        let f = signer();
        let signed = sign(REQ, &f, Copertura::IntestazioneMessaggio);
        let body = signed.replace("SILBO26200000000000000042", "SILBO26200000000000000043");
        assert!(
            matches!(check(&body), Err(FirmaError::Xml(_))),
            "{:?}",
            check(&body)
        );
        let header = signed.replace(
            ">EMILIA</eGov_IT:IdentificativoParte></eGov_IT:Mittente>",
            ">LAZIO</eGov_IT:IdentificativoParte></eGov_IT:Mittente>",
        );
        assert!(
            matches!(check(&header), Err(FirmaError::Intestazione(_))),
            "{:?}",
            check(&header)
        );
        let late = Regole {
            now: now() + Duration::minutes(10),
            ..rules()
        };
        let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
        assert!(matches!(
            verifica(&signed, &env, &late),
            Err(FirmaError::Politica(_))
        ));
        // No Security header at all.
        assert!(matches!(check(REQ), Err(FirmaError::Politica(_))));
        // Another valid certificate in the token: the signature no longer matches.
        let other = signer();
        let theirs = B64.encode(f.cert.to_der().unwrap());
        let swapped = signed.replace(&theirs, &B64.encode(other.cert.to_der().unwrap()));
        assert!(matches!(check(&swapped), Err(FirmaError::Xml(_))));
    }

    #[test]
    fn wrapping_is_refused() {
        let f = signer();
        let signed = sign(REQ, &f, Copertura::IntestazioneMessaggio);
        // Move the signed Body into a header block and put another Body in its place.
        let env = Envelope::parse(signed.as_bytes(), Limits::default()).unwrap();
        let body = &signed[env.body.clone()];
        let evil_body = "<soapenv:Body><x:evil xmlns:x=\"urn:x\"/></soapenv:Body>";
        let wrapped = signed.replace(body, evil_body).replacen(
            "<soapenv:Header>",
            &format!("<soapenv:Header><w:Wrapper xmlns:w=\"urn:w\">{body}</w:Wrapper>"),
            1,
        );
        assert!(
            matches!(check(&wrapped), Err(FirmaError::Xml(_))),
            "{:?}",
            check(&wrapped)
        );
        // Two elements with the Body's id.
        let twice = signed.replacen(
            "<soapenv:Header>",
            "<soapenv:Header><w:Decoy xmlns:w=\"urn:w\" xmlns:wsu=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd\" wsu:Id=\"pdd-body\"/>",
            1,
        );
        assert!(matches!(check(&twice), Err(FirmaError::Xml(m)) if m.contains("più elementi")));
    }
}
