//! MIME `multipart/related` as SOAP with Attachments 1.0 uses it: the SOAP envelope in the root
//! part, attachments in the others, each named by its Content-ID. Read strictly (a missing
//! boundary, an unterminated body or a doubled Content-ID is an error that names itself, never a
//! guess) and written with a boundary drawn at random and checked absent from the contents.
//!
//! Written by hand: the crates for multipart parse `multipart/form-data` for web forms, and the
//! porte need the raw octets of each part (the WS-Security SwA profile digests them) and the
//! exact failure to answer with the right EGOV_IT code.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// One part of a multipart message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parte {
    /// The Content-ID without its angle brackets.
    pub content_id: Option<String>,
    pub content_location: Option<String>,
    /// The Content-Type as written (`application/octet-stream` when absent, RFC 2046 §5.1.3
    /// says `text/plain`, but SwA stacks treat an untyped part as octets).
    pub content_type: String,
    /// The content, decoded from its Content-Transfer-Encoding.
    pub contenuto: Vec<u8>,
}

impl Parte {
    /// An attachment of octets with a Content-ID.
    pub fn nuova(content_id: &str, content_type: &str, contenuto: Vec<u8>) -> Parte {
        Parte {
            content_id: Some(content_id.to_string()),
            content_location: None,
            content_type: content_type.to_string(),
            contenuto,
        }
    }

    /// Whether `href` (a `cid:` URL, a bare id, or a Content-Location) names this part.
    pub fn indicata_da(&self, href: &str) -> bool {
        let h = href.trim();
        if let Some(id) = &self.content_id {
            let senza = h.strip_prefix("cid:").unwrap_or(h);
            let senza = senza
                .strip_prefix('<')
                .and_then(|s| s.strip_suffix('>'))
                .unwrap_or(senza);
            // cid: URLs are %-encoded (RFC 2392).
            if senza == id || percent_decode(senza).as_deref() == Some(id.as_str()) {
                return true;
            }
        }
        self.content_location.as_deref() == Some(h)
    }

    /// A name for messages: `cid:…`, the location, or the position.
    pub fn nome(&self, n: usize) -> String {
        match (&self.content_id, &self.content_location) {
            (Some(id), _) => format!("cid:{id}"),
            (None, Some(l)) => l.clone(),
            (None, None) => format!("parte {n}"),
        }
    }

    /// The media type alone, lower case (`text/xml` of `Text/XML; charset=utf-8`).
    pub fn media(&self) -> String {
        self.content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }
}

fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A SwA message read: the root part (the SOAP envelope), the attachments, and what is wrong
/// with the attachments while the root could still be read (the porta answers those with an
/// error busta, EGOV_IT_003).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    pub radice: Parte,
    pub allegati: Vec<Parte>,
    pub difetti: Vec<String>,
}

/// The limits on what a multipart body may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limiti {
    /// Parts besides the root.
    pub max_allegati: usize,
    /// Octets of one attachment, decoded.
    pub max_allegato_bytes: usize,
}

impl Default for Limiti {
    fn default() -> Limiti {
        Limiti {
            max_allegati: 100,
            max_allegato_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Why a multipart body cannot be read at all (no envelope can be taken out of it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    #[error("multipart/related senza parametro boundary nel Content-Type")]
    SenzaBoundary,
    #[error("boundary non valido (1-70 caratteri, RFC 2046 §5.1.1)")]
    BoundaryNonValido,
    #[error("il corpo non contiene il delimitatore --{0}")]
    SenzaDelimitatore(String),
    #[error("il corpo non termina con il delimitatore di chiusura --{0}--")]
    NonTerminato(String),
    #[error("intestazioni MIME della parte {0} illeggibili")]
    Intestazioni(usize),
    #[error("nessuna parte nel messaggio multipart")]
    Vuoto,
    #[error("la parte radice <{0}> indicata da start non c'è")]
    RadiceAssente(String),
    #[error("la parte radice è {0}, non text/xml (SOAP 1.1)")]
    RadiceNonXml(String),
    #[error("la parte radice: {0}")]
    RadiceCodifica(String),
    #[error("più di {0} parti")]
    TroppeParti(usize),
    #[error(
        "multipart/related di tipo {0}: solo SwA (type=\"text/xml\") è supportato, non MTOM/XOP"
    )]
    Tipo(String),
}

/// Whether a Content-Type is `multipart/related`.
pub fn is_multipart_related(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("multipart/related"))
}

/// The parameter `nome` of a header value (`boundary`, `start`, `type`), unquoted.
pub fn parametro(valore: &str, nome: &str) -> Option<String> {
    // Quoted values may hold `;`: walk the value rather than split it.
    let b = valore.as_bytes();
    let mut i = valore.find(';')?;
    while i < b.len() {
        i += 1;
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b';' {
            i += 1;
        }
        let k = valore[k0..i].trim();
        if i >= b.len() || b[i] == b';' {
            continue;
        }
        i += 1;
        let v = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut v = String::new();
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                v.push(b[i] as char);
                i += 1;
            }
            i += 1;
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            v
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b';' {
                i += 1;
            }
            valore[v0..i].trim().to_string()
        };
        if k.eq_ignore_ascii_case(nome) {
            return Some(v);
        }
    }
    None
}

fn trova(h: &[u8], ago: &[u8], da: usize) -> Option<usize> {
    if ago.is_empty() || da > h.len() {
        return None;
    }
    memchr::memmem::find(&h[da..], ago).map(|i| da + i)
}

/// Reads a `multipart/related` body whose Content-Type is `content_type`.
pub fn leggi(content_type: &str, body: &[u8], limiti: Limiti) -> Result<Multipart, MimeError> {
    if let Some(t) = parametro(content_type, "type") {
        let t = t.trim().to_ascii_lowercase();
        if t != "text/xml" {
            return Err(MimeError::Tipo(t));
        }
    }
    let boundary = parametro(content_type, "boundary").ok_or(MimeError::SenzaBoundary)?;
    if boundary.is_empty() || boundary.len() > 70 || boundary.ends_with(' ') {
        return Err(MimeError::BoundaryNonValido);
    }
    let start = parametro(content_type, "start").map(|s| senza_parentesi(&s).to_string());
    let delim = format!("--{boundary}");
    let d = delim.as_bytes();
    // The first delimiter: at the very start, or after a preamble and CRLF.
    let primo = if body.starts_with(d) {
        0
    } else {
        trova(body, format!("\n{delim}").as_bytes(), 0)
            .map(|i| i + 1)
            .ok_or_else(|| MimeError::SenzaDelimitatore(boundary.clone()))?
    };
    let mut parti: Vec<Parte> = Vec::new();
    let mut pos = primo + d.len();
    let mut chiuso = false;
    // Each delimiter in the body proper is CRLF--boundary (LF alone tolerated).
    let sep = format!("\n{delim}");
    loop {
        if body[pos..].starts_with(b"--") {
            chiuso = true;
            break;
        }
        // The rest of the delimiter line (transport padding), then the part.
        let Some(fine_riga) = trova(body, b"\n", pos) else {
            break;
        };
        let inizio = fine_riga + 1;
        let Some(prossimo) = trova(body, sep.as_bytes(), inizio) else {
            break;
        };
        let fine = if prossimo > inizio && body[prossimo - 1] == b'\r' {
            prossimo - 1
        } else {
            prossimo
        };
        if parti.len() > limiti.max_allegati {
            return Err(MimeError::TroppeParti(limiti.max_allegati + 1));
        }
        parti.push(parte(&body[inizio.min(fine)..fine], parti.len())?);
        pos = prossimo + sep.len();
    }
    if !chiuso {
        return Err(MimeError::NonTerminato(boundary));
    }
    if parti.is_empty() {
        return Err(MimeError::Vuoto);
    }
    let i_radice = match &start {
        Some(id) => parti
            .iter()
            .position(|p| p.content_id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| MimeError::RadiceAssente(id.clone()))?,
        None => 0,
    };
    let radice = parti.remove(i_radice);
    let media = radice.media();
    if media != "text/xml" {
        return Err(MimeError::RadiceNonXml(media));
    }
    let mut difetti = Vec::new();
    let mut visti: Vec<&str> = radice.content_id.as_deref().into_iter().collect();
    for (n, p) in parti.iter().enumerate() {
        if let Some(id) = p.content_id.as_deref() {
            if visti.contains(&id) {
                difetti.push(format!("Content-ID <{id}> ripetuto"));
            }
            visti.push(id);
        }
        if p.contenuto.len() > limiti.max_allegato_bytes {
            difetti.push(format!(
                "l'allegato {} è di {} byte, oltre il limite di {} (limits.max_allegato_bytes)",
                p.nome(n + 1),
                p.contenuto.len(),
                limiti.max_allegato_bytes
            ));
        }
    }
    Ok(Multipart {
        radice,
        allegati: parti,
        difetti,
    })
}

fn senza_parentesi(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .unwrap_or(s)
}

/// One part: its headers up to the empty line, then its content, decoded.
fn parte(b: &[u8], n: usize) -> Result<Parte, MimeError> {
    // A part with no headers starts with the empty line itself.
    let (testa, corpo) = if b.starts_with(b"\r\n") {
        (&b[..0], &b[2..])
    } else if b.starts_with(b"\n") {
        (&b[..0], &b[1..])
    } else {
        match (trova(b, b"\r\n\r\n", 0), trova(b, b"\n\n", 0)) {
            (Some(i), Some(j)) if j < i => (&b[..j], &b[j + 2..]),
            (Some(i), _) => (&b[..i], &b[i + 4..]),
            (None, Some(j)) => (&b[..j], &b[j + 2..]),
            (None, None) => return Err(MimeError::Intestazioni(n + 1)),
        }
    };
    let testa = std::str::from_utf8(testa).map_err(|_| MimeError::Intestazioni(n + 1))?;
    let mut p = Parte {
        content_id: None,
        content_location: None,
        content_type: "application/octet-stream".into(),
        contenuto: Vec::new(),
    };
    let mut cte = String::from("binary");
    // Folded lines (RFC 5322 §2.2.3) join the previous header.
    let mut righe: Vec<String> = Vec::new();
    for r in testa.split('\n').map(|r| r.trim_end_matches('\r')) {
        if r.starts_with([' ', '\t']) {
            match righe.last_mut() {
                Some(u) => u.push_str(r),
                None => return Err(MimeError::Intestazioni(n + 1)),
            }
        } else if !r.is_empty() {
            righe.push(r.to_string());
        }
    }
    for r in &righe {
        let (k, v) = r.split_once(':').ok_or(MimeError::Intestazioni(n + 1))?;
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-id" => p.content_id = Some(senza_parentesi(v).to_string()),
            "content-location" => p.content_location = Some(v.to_string()),
            "content-type" => p.content_type = v.to_string(),
            "content-transfer-encoding" => cte = v.to_ascii_lowercase(),
            _ => {}
        }
    }
    p.contenuto = match cte.as_str() {
        "binary" | "8bit" | "7bit" => corpo.to_vec(),
        "base64" => {
            let pulito: Vec<u8> = corpo
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            B64.decode(pulito).map_err(|_| {
                MimeError::RadiceCodifica(format!("parte {} non è base64 valido", n + 1))
            })?
        }
        altro => {
            return Err(MimeError::RadiceCodifica(format!(
                "Content-Transfer-Encoding '{altro}' della parte {} non supportato (binary, 8bit, 7bit, base64)",
                n + 1
            )))
        }
    };
    Ok(p)
}

/// A message body as the porte take it in: the envelope as UTF-8 (the root part of SOAP with
/// Attachments, else the body itself, in the encoding its `charset` or XML declaration names),
/// the attachments, and what is wrong with them.
#[derive(Debug)]
pub struct Scomposto<'a> {
    pub testo: std::borrow::Cow<'a, [u8]>,
    pub allegati: Vec<Parte>,
    pub difetti: Vec<String>,
}

/// Takes a body with its Content-Type apart ([`Scomposto`]); why not, when no envelope can be
/// read out of it.
pub fn scomponi<'a>(
    content_type: &str,
    body: &'a [u8],
    limiti: Limiti,
) -> Result<Scomposto<'a>, String> {
    use crate::xml::codifica::in_utf8;
    use std::borrow::Cow;
    if !is_multipart_related(content_type) {
        let charset = parametro(content_type, "charset");
        return Ok(Scomposto {
            testo: in_utf8(body, charset.as_deref()).map_err(|e| e.to_string())?,
            allegati: Vec::new(),
            difetti: Vec::new(),
        });
    }
    let m = leggi(content_type, body, limiti).map_err(|e| format!("SOAP with Attachments: {e}"))?;
    let charset = parametro(&m.radice.content_type, "charset");
    let radice = m.radice.contenuto;
    // The root part is ours already: converted only when it is not UTF-8.
    let convertito = match in_utf8(&radice, charset.as_deref()).map_err(|e| e.to_string())? {
        Cow::Borrowed(_) => None,
        Cow::Owned(v) => Some(v),
    };
    Ok(Scomposto {
        testo: Cow::Owned(convertito.unwrap_or(radice)),
        allegati: m.allegati,
        difetti: m.difetti,
    })
}

/// Writes a SwA message: the SOAP envelope `radice` (UTF-8) as the root part, then the
/// attachments as binary parts. Returns the Content-Type and the body. `boundary` must not
/// occur in any content (the caller draws it at random).
pub fn scrivi(boundary: &str, radice: &[u8], allegati: &[Parte]) -> (String, Vec<u8>) {
    let root_id = "radice@pdd";
    let totale = radice.len()
        + allegati
            .iter()
            .map(|a| a.contenuto.len() + 200)
            .sum::<usize>();
    let mut out = Vec::with_capacity(totale + 300);
    let testa = |out: &mut Vec<u8>, righe: &[String]| {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        for r in righe {
            out.extend_from_slice(r.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    };
    testa(
        &mut out,
        &[
            "Content-Type: text/xml; charset=utf-8".into(),
            "Content-Transfer-Encoding: binary".into(),
            format!("Content-ID: <{root_id}>"),
        ],
    );
    out.extend_from_slice(radice);
    out.extend_from_slice(b"\r\n");
    for a in allegati {
        let mut righe = vec![
            format!("Content-Type: {}", a.content_type),
            "Content-Transfer-Encoding: binary".into(),
        ];
        if let Some(id) = &a.content_id {
            righe.push(format!("Content-ID: <{id}>"));
        }
        if let Some(l) = &a.content_location {
            righe.push(format!("Content-Location: {l}"));
        }
        testa(&mut out, &righe);
        out.extend_from_slice(&a.contenuto);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let ct = format!(
        "multipart/related; type=\"text/xml\"; boundary=\"{boundary}\"; start=\"<{root_id}>\""
    );
    (ct, out)
}

/// Whether `boundary` is safe for these contents.
pub fn boundary_libero(boundary: &str, radice: &[u8], allegati: &[Parte]) -> bool {
    let d = format!("--{boundary}");
    trova(radice, d.as_bytes(), 0).is_none()
        && allegati
            .iter()
            .all(|a| trova(&a.contenuto, d.as_bytes(), 0).is_none())
}

/// A `multipart/related` body written once, so that what is recorded is what is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpo {
    pub content_type: String,
    pub corpo: bytes::Bytes,
}

/// A fresh Content-ID for a part we write (the original Body under a Manifest).
pub fn content_id(ruolo: &str) -> String {
    let mut r = [0u8; 10];
    let _ = openssl::rand::rand_bytes(&mut r);
    format!(
        "{ruolo}-{}@pdd",
        r.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

impl Corpo {
    /// The envelope `radice` and its attachments as one SwA body, with a fresh boundary.
    pub fn scrivi(radice: &str, allegati: &[Parte]) -> Corpo {
        let boundary = loop {
            let mut r = [0u8; 12];
            // The boundary only has to be absent from the contents: a weak draw is checked.
            let _ = openssl::rand::rand_bytes(&mut r);
            let b = format!(
                "MIMEBoundary_pdd_{}",
                r.iter().map(|x| format!("{x:02x}")).collect::<String>()
            );
            if boundary_libero(&b, radice.as_bytes(), allegati) {
                break b;
            }
        };
        let (content_type, corpo) = scrivi(&boundary, radice.as_bytes(), allegati);
        Corpo {
            content_type,
            corpo: corpo.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/related; type=\"text/xml\"; boundary=\"XyZ\"; start=\"<root>\"";

    fn corpo(parti: &[&str]) -> Vec<u8> {
        let mut s = String::from("preambolo ignorato\r\n");
        for p in parti {
            s.push_str("--XyZ\r\n");
            s.push_str(p);
            s.push_str("\r\n");
        }
        s.push_str("--XyZ--\r\n");
        s.into_bytes()
    }

    const ROOT: &str = "Content-Type: text/xml; charset=utf-8\r\nContent-ID: <root>\r\n\r\n<e/>";

    #[test]
    fn reads_root_and_attachments() {
        let b = corpo(&[
            ROOT,
            "Content-Type: application/pdf\r\nContent-ID: <a1@x>\r\n\r\n%PDF\r\n--not-a-delimiter",
            "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\nContent-Location: doc2\r\n\r\nY2lhbw==",
        ]);
        let m = leggi(CT, &b, Limiti::default()).unwrap();
        assert_eq!(m.radice.contenuto, b"<e/>");
        assert_eq!(m.allegati.len(), 2);
        assert_eq!(m.allegati[0].contenuto, b"%PDF\r\n--not-a-delimiter");
        assert_eq!(m.allegati[0].content_id.as_deref(), Some("a1@x"));
        assert_eq!(m.allegati[1].contenuto, b"ciao");
        assert!(m.allegati[0].indicata_da("cid:a1@x"));
        assert!(m.allegati[0].indicata_da("cid:<a1@x>"));
        assert!(m.allegati[0].indicata_da("cid:a1%40x"));
        assert!(!m.allegati[0].indicata_da("cid:a2@x"));
        assert!(m.allegati[1].indicata_da("doc2"));
        assert!(m.difetti.is_empty());
    }

    #[test]
    fn written_then_read_is_the_same() {
        let allegati = vec![
            Parte::nuova("uno@pdd", "application/octet-stream", (0..=255u8).collect()),
            Parte::nuova("due@pdd", "text/plain", b"".to_vec()),
        ];
        let (ct, b) = scrivi("bnd42", b"<Envelope/>", &allegati);
        let m = leggi(&ct, &b, Limiti::default()).unwrap();
        assert_eq!(m.radice.contenuto, b"<Envelope/>");
        assert_eq!(m.allegati, allegati);
        assert!(boundary_libero("bnd42", b"<Envelope/>", &allegati));
        assert!(!boundary_libero("bnd42", b"x--bnd42", &allegati));
    }

    #[test]
    fn malformed_bodies_say_why() {
        let b = corpo(&[ROOT]);
        assert_eq!(
            leggi(
                "multipart/related; type=\"text/xml\"",
                &b,
                Limiti::default()
            ),
            Err(MimeError::SenzaBoundary)
        );
        assert_eq!(
            leggi(CT, b"no delimiter here", Limiti::default()),
            Err(MimeError::SenzaDelimitatore("XyZ".into()))
        );
        let tronco = &b[..b.len() - 9];
        assert_eq!(
            leggi(CT, tronco, Limiti::default()),
            Err(MimeError::NonTerminato("XyZ".into()))
        );
        let senza_radice = corpo(&["Content-Type: text/xml\r\nContent-ID: <other>\r\n\r\n<e/>"]);
        assert_eq!(
            leggi(CT, &senza_radice, Limiti::default()),
            Err(MimeError::RadiceAssente("root".into()))
        );
        let mtom = "multipart/related; type=\"application/xop+xml\"; boundary=XyZ";
        assert!(matches!(
            leggi(mtom, &b, Limiti::default()),
            Err(MimeError::Tipo(_))
        ));
        let qp = corpo(&[
            ROOT,
            "Content-ID: <q>\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx",
        ]);
        assert!(matches!(
            leggi(CT, &qp, Limiti::default()),
            Err(MimeError::RadiceCodifica(_))
        ));
    }

    #[test]
    fn attachment_defects_leave_the_root_readable() {
        let b = corpo(&[
            ROOT,
            "Content-ID: <a>\r\n\r\nuno",
            "Content-ID: <a>\r\n\r\ndue",
            "Content-ID: <big>\r\n\r\n0123456789",
        ]);
        let limiti = Limiti {
            max_allegati: 10,
            max_allegato_bytes: 5,
        };
        let m = leggi(CT, &b, limiti).unwrap();
        assert_eq!(m.difetti.len(), 2, "{:?}", m.difetti);
        assert!(m.difetti[0].contains("<a> ripetuto"));
        assert!(m.difetti[1].contains("oltre il limite"));
        let troppe = Limiti {
            max_allegati: 2,
            max_allegato_bytes: 100,
        };
        assert_eq!(leggi(CT, &b, troppe), Err(MimeError::TroppeParti(3)));
    }

    #[test]
    fn parameters_are_read_quoted_or_not() {
        let v = "multipart/related; boundary=\"a;b\"; start=<r>; type=text/xml";
        assert_eq!(parametro(v, "boundary").as_deref(), Some("a;b"));
        assert_eq!(parametro(v, "START").as_deref(), Some("<r>"));
        assert_eq!(parametro(v, "type").as_deref(), Some("text/xml"));
        assert_eq!(parametro(v, "charset"), None);
        assert!(is_multipart_related("Multipart/Related ; boundary=x"));
        assert!(!is_multipart_related("text/xml"));
    }
}
