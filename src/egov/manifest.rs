//! The Manifest of a busta with attachments (busta-egov.md §1.5): the SOAP Body holds only
//! `eGov_IT:Descrizione`, one `DescrizioneMessaggio/Riferimento` per MIME part; the original
//! Body travels as a `text/xml` part of role `Richiesta` (or `Risposta`), the other parts with
//! role `Allegato`. Written on the way out ([`imbusta`]), checked and undone on the way in
//! ([`controlla`], [`sbusta`]), with the codes GovWay answers: 003 for a malformed Manifest,
//! 118 for a wrong reference or role, 119 for a part the Manifest names and the message lacks,
//! 120 for a part the Manifest does not name.

use super::{Codice, Eccezione, NS_BUSTA};
use crate::mime::Parte;
use crate::xml::{escape_attr, escape_text, Element};

/// The role of the part that holds the original Body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ruolo {
    Richiesta,
    Risposta,
}

impl Ruolo {
    pub fn as_str(self) -> &'static str {
        match self {
            Ruolo::Richiesta => "Richiesta",
            Ruolo::Risposta => "Risposta",
        }
    }
}

/// The role of every other part.
pub const ALLEGATO: &str = "Allegato";

/// What an empty Body becomes as a part (OpenSPCoop's convention, which GovWay reads back).
pub const CORPO_VUOTO: &str =
    "<eGov_IT:SoapBodyEmpty xmlns:eGov_IT=\"http://www.openspcoop2.org/spcoop/manifest/body\"/>";
const NS_CORPO_VUOTO: &str = "http://www.openspcoop2.org/spcoop/manifest/body";

const POS: &str = "SOAPBody/Descrizione";
const POS_RIF: &str = "SOAPBody/Descrizione/DescrizioneMessaggio/Riferimento";

/// The Body content `corpo` (with the namespace bindings `ns` it relies on from the Envelope
/// and Body) and the local system's attachments, packed: the Manifest to put in the Body, and
/// the parts to send, the original Body last as `cid:{id_corpo}`.
pub fn imbusta(
    corpo: &str,
    ns: &[(String, String)],
    mut allegati: Vec<Parte>,
    ruolo: Ruolo,
    id_corpo: &str,
) -> (String, Vec<Parte>) {
    let corpo = corpo.trim();
    let contenuto = if corpo.is_empty() {
        CORPO_VUOTO.to_string()
    } else {
        con_dichiarazioni(corpo, ns)
    };
    allegati.push(Parte::nuova(
        id_corpo,
        "text/xml; charset=utf-8",
        contenuto.into_bytes(),
    ));
    let mut m = format!("<eGov_IT:Descrizione xmlns:eGov_IT=\"{NS_BUSTA}\">");
    let ultimo = allegati.len();
    for (i, p) in allegati.iter().enumerate() {
        let n = i + 1;
        let principale = n == ultimo;
        let href = match (&p.content_id, &p.content_location) {
            (Some(id), _) => format!("cid:{id}"),
            (None, Some(l)) => l.clone(),
            (None, None) => format!("cid:{}", n),
        };
        let ruolo = if principale { ruolo.as_str() } else { ALLEGATO };
        let titolo = if principale {
            ruolo.to_string()
        } else {
            format!("attachment{n}")
        };
        m.push_str(&format!(
            "<eGov_IT:DescrizioneMessaggio><eGov_IT:Riferimento href=\"{}\" role=\"{ruolo}\" eGov_IT:id=\"attachment{n}\"><eGov_IT:Schema posizione=\"{}\"/><eGov_IT:Titolo Lingua=\"it\">{}</eGov_IT:Titolo></eGov_IT:Riferimento></eGov_IT:DescrizioneMessaggio>",
            escape_attr(&href),
            escape_attr(&p.content_type),
            escape_text(&titolo),
        ));
    }
    m.push_str("</eGov_IT:Descrizione>");
    (m, allegati)
}

/// The Body content as a document of its own: the bindings it took from the Envelope and Body
/// declared on its first element (where that element does not declare them itself).
fn con_dichiarazioni(corpo: &str, ns: &[(String, String)]) -> String {
    let Some(lt) = corpo.find('<') else {
        return corpo.to_string();
    };
    let nome_fine = corpo[lt + 1..]
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .map(|i| lt + 1 + i)
        .unwrap_or(corpo.len());
    let tag_fine = corpo[lt..].find('>').map(|i| lt + i).unwrap_or(corpo.len());
    let tag = &corpo[lt..tag_fine];
    let mut decl = String::new();
    for (p, u) in ns {
        let attr = if p.is_empty() {
            "xmlns".to_string()
        } else {
            format!("xmlns:{p}")
        };
        if !tag.contains(&format!("{attr}=")) {
            decl.push_str(&format!(" {attr}=\"{}\"", escape_attr(u)));
        }
    }
    format!("{}{}{}", &corpo[..nome_fine], decl, &corpo[nome_fine..])
}

/// A Manifest checked against the parts: which part holds the original Body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verificato {
    pub principale: usize,
}

/// Checks the Manifest (`descrizione`, the only element of the Body; `altri` tells whether
/// the Body held more) against the message's attachments. Every fault found, in GovWay's
/// order and codes; the message is refused when any is found.
pub fn controlla(
    descrizione: Option<&Element>,
    altri: bool,
    allegati: &[Parte],
) -> Result<Verificato, Vec<Eccezione>> {
    let g = |c: Codice, p: String| Eccezione::grave(c, p);
    let Some(d) = descrizione.filter(|_| !altri) else {
        return Err(vec![g(
            Codice::FORMATO_CORPO,
            format!("SOAPBody child size:{}", descrizione.map_or(0, |_| 2)),
        )]);
    };
    if d.local != "Descrizione" {
        return Err(vec![g(Codice::FORMATO_CORPO, POS.into())]);
    }
    if d.ns.as_deref() != Some(NS_BUSTA) {
        return Err(vec![g(Codice::FORMATO_CORPO, format!("{POS}/namespace"))]);
    }
    if d.children.is_empty() {
        return Err(vec![g(
            Codice::FORMATO_CORPO,
            format!("{POS} child size:0"),
        )]);
    }
    let mut errori = Vec::new();
    let mut non_indicati: Vec<usize> = (0..allegati.len()).collect();
    let mut principale: Option<usize> = None;
    let mut principali = 0;
    for dm in &d.children {
        if !dm.is(NS_BUSTA, "DescrizioneMessaggio") {
            errori.push(g(
                Codice::FORMATO_CORPO,
                format!("{POS}/child[{}]", dm.local),
            ));
            continue;
        }
        let [rif] = dm.children.as_slice() else {
            errori.push(g(
                Codice::FORMATO_CORPO,
                format!(
                    "{POS}/DescrizioneMessaggio child size:{}",
                    dm.children.len()
                ),
            ));
            continue;
        };
        if !rif.is(NS_BUSTA, "Riferimento") {
            errori.push(g(
                Codice::RIFERIMENTO_ALLEGATO,
                format!("{POS}/DescrizioneMessaggio/child[{}]", rif.local),
            ));
            continue;
        }
        let attr = |nome: &str| rif.attr(nome).or_else(|| rif.attr_ns(NS_BUSTA, nome));
        let Some(href) = attr("href").filter(|h| !h.trim().is_empty()) else {
            errori.push(g(Codice::RIFERIMENTO_ALLEGATO, format!("{POS_RIF}/href")));
            continue;
        };
        let trovata = non_indicati
            .iter()
            .position(|&i| allegati[i].indicata_da(href));
        let indice = match trovata {
            Some(k) => Some(non_indicati.remove(k)),
            None => {
                errori.push(g(
                    Codice::ALLEGATO_NON_PRESENTE,
                    format!("{POS_RIF}/href[{href}]"),
                ));
                None
            }
        };
        let Some(role) = attr("role") else {
            errori.push(g(Codice::FORMATO_CORPO, format!("{POS_RIF}/role")));
            continue;
        };
        if role.eq_ignore_ascii_case("Richiesta") || role.eq_ignore_ascii_case("Risposta") {
            principali += 1;
            if principali > 1 {
                errori.push(g(
                    Codice::RIFERIMENTO_ALLEGATO,
                    format!("{POS_RIF}/role (Richiesta/Risposta) non univoco"),
                ));
                continue;
            }
            principale = indice;
        }
        if rif.attr_ns(NS_BUSTA, "id").is_none() {
            errori.push(g(Codice::FORMATO_CORPO, format!("{POS_RIF}/id")));
            continue;
        }
        let figli: Vec<&Element> = rif.children.iter().collect();
        let (schema, titolo) = match figli.as_slice() {
            [a, b] if a.local == "Schema" => (*a, *b),
            [a, b] if a.local == "Titolo" => (*b, *a),
            [a, _] => {
                errori.push(g(
                    Codice::FORMATO_CORPO,
                    format!("{POS_RIF}/child[{}]", a.local),
                ));
                continue;
            }
            _ => {
                errori.push(g(
                    Codice::FORMATO_CORPO,
                    format!("{POS_RIF} child size:{}", figli.len()),
                ));
                continue;
            }
        };
        if !schema.is(NS_BUSTA, "Schema") {
            errori.push(g(Codice::FORMATO_CORPO, format!("{POS_RIF}/Schema")));
            continue;
        }
        if schema.attr("posizione").is_none() && schema.attr_ns(NS_BUSTA, "posizione").is_none() {
            errori.push(g(
                Codice::FORMATO_CORPO,
                format!("{POS_RIF}/Schema/posizione"),
            ));
            continue;
        }
        if !titolo.is(NS_BUSTA, "Titolo") || titolo.value().is_empty() {
            errori.push(g(Codice::FORMATO_CORPO, format!("{POS_RIF}/Titolo")));
            continue;
        }
    }
    if principali == 0 && errori.is_empty() {
        errori.push(g(
            Codice::RIFERIMENTO_ALLEGATO,
            format!("{POS_RIF}/role (Richiesta/Risposta) non esistente"),
        ));
    }
    for i in non_indicati {
        errori.push(g(
            Codice::ALLEGATO_NON_DEFINITO,
            format!("{POS_RIF}/href[{}]", allegati[i].nome(i + 1)),
        ));
    }
    match (errori.is_empty(), principale) {
        (true, Some(principale)) => Ok(Verificato { principale }),
        _ => Err(errori),
    }
}

/// A Manifest undone: the original Body's content, and the part that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aperto {
    pub corpo: String,
    pub principale: usize,
}

/// The Manifest in `env`'s Body checked against `allegati` ([`controlla`]), and the original
/// Body read back from its part ([`sbusta`]): what both porte do with a message carrying parts.
pub fn apri(
    env: &crate::soap::Envelope<'_>,
    allegati: &[Parte],
    limits: crate::xml::Limits,
) -> Result<Aperto, Vec<Eccezione>> {
    let corpo_errato = || vec![Eccezione::grave(Codice::FORMATO_CORPO, POS_RIF)];
    let prima = env.body_tree(limits).map_err(|_| corpo_errato())?;
    let altri = prima
        .as_ref()
        .is_some_and(|p| !env.src[p.span.end..env.body_content.end].trim().is_empty());
    let v = controlla(prima.as_deref(), altri, allegati)?;
    let corpo = sbusta(&allegati[v.principale]).map_err(|_| corpo_errato())?;
    Ok(Aperto {
        corpo,
        principale: v.principale,
    })
}

/// The original Body back from its part: the content for a SOAP Body (empty for the
/// empty-Body marker), without its XML declaration.
pub fn sbusta(parte: &Parte) -> Result<String, String> {
    let testo = std::str::from_utf8(&parte.contenuto)
        .map_err(|_| "la parte principale non è testo UTF-8".to_string())?;
    let mut t = testo.trim_start_matches('\u{feff}').trim();
    if t.starts_with("<?xml") {
        t = t
            .find("?>")
            .map(|i| t[i + 2..].trim_start())
            .ok_or("dichiarazione XML non chiusa nella parte principale")?;
    }
    if t.contains(NS_CORPO_VUOTO) && t.contains("SoapBodyEmpty") && t.len() < 200 {
        return Ok(String::new());
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::Limits;

    fn body_of(manifest: &str) -> Element {
        let env = crate::soap::envelope(&[], manifest);
        let e = crate::soap::Envelope::parse(env.as_bytes(), Limits::default()).unwrap();
        e.body_tree(Limits::default())
            .unwrap()
            .unwrap()
            .into_owned()
    }

    fn parti() -> Vec<Parte> {
        vec![Parte::nuova("pdf@x", "application/pdf", b"%PDF".to_vec())]
    }

    #[test]
    fn packed_then_checked_then_unpacked() {
        let ns = vec![("cl".to_string(), "urn:cl".to_string())];
        let (m, tutte) = imbusta(
            "<cl:Invio><cl:x>1</cl:x></cl:Invio>",
            &ns,
            parti(),
            Ruolo::Richiesta,
            "corpo@pdd",
        );
        assert_eq!(tutte.len(), 2);
        let v = controlla(Some(&body_of(&m)), false, &tutte).unwrap();
        assert_eq!(v.principale, 1);
        assert_eq!(
            sbusta(&tutte[1]).unwrap(),
            "<cl:Invio xmlns:cl=\"urn:cl\"><cl:x>1</cl:x></cl:Invio>"
        );
        let (m, tutte) = imbusta("", &[], parti(), Ruolo::Risposta, "c");
        assert!(m.contains("role=\"Risposta\""));
        assert_eq!(sbusta(&tutte[1]).unwrap(), "");
    }

    fn codici(r: Result<Verificato, Vec<Eccezione>>) -> Vec<u16> {
        r.unwrap_err().iter().map(|e| e.codice.0).collect()
    }

    #[test]
    fn wrong_manifests_get_their_codes() {
        let (m, tutte) = imbusta("<a/>", &[], parti(), Ruolo::Richiesta, "c@x");
        // A part the Manifest does not name: 120.
        let mut piu = tutte.clone();
        piu.push(Parte::nuova("extra@x", "text/plain", b"x".to_vec()));
        assert_eq!(codici(controlla(Some(&body_of(&m)), false, &piu)), [120]);
        // A part it names that is not there: 119.
        assert_eq!(
            codici(controlla(Some(&body_of(&m)), false, &tutte[1..])),
            [119]
        );
        // No principal part: 118; two: 118.
        let senza = m.replace("role=\"Richiesta\"", "role=\"Allegato\"");
        assert_eq!(
            codici(controlla(Some(&body_of(&senza)), false, &tutte)),
            [118]
        );
        let due = m.replace("role=\"Allegato\"", "role=\"Risposta\"");
        assert_eq!(
            codici(controlla(Some(&body_of(&due)), false, &tutte)),
            [118]
        );
        // No href: 118. Not a Descrizione, or more in the Body: 003.
        let senza_href = m.replacen("href=\"cid:pdf@x\"", "", 1);
        assert_eq!(
            codici(controlla(Some(&body_of(&senza_href)), false, &tutte)),
            [118, 120]
        );
        assert_eq!(
            codici(controlla(Some(&body_of("<a/>")), false, &tutte)),
            [3]
        );
        assert_eq!(codici(controlla(Some(&body_of(&m)), true, &tutte)), [3]);
        assert_eq!(codici(controlla(None, false, &tutte)), [3]);
    }
}
