//! ClicLavoro moduli: Candidatura, Vacancy, Messaggio — schemas, typed models, code tables,
//! codice fiscale and the document's rules. Pure: no I/O, time comes in as a parameter.
//!
//! [`valida`] judges a modulo the way the ministry's standard does and returns every problem,
//! each with a path, a stable code, an Italian message and a level: `schema` for what the XSD
//! decides (the project's own schemas in `xsd/`, held equal to the official ones by a
//! differential test against xmllint), `rule` for code tables, check digits and the rules of
//! "ClicLavoro — Modelli e regole".

pub mod cf;
pub mod intermediario;
pub mod model;
pub mod rapporto;
mod regole;
pub mod ricerca;
pub mod scheda;
pub mod stato;
pub mod tabelle;
pub mod ws;
pub mod xsd;

use std::sync::OnceLock;

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

pub use model::{Modulo, Tipo};
pub use regole::data;

use crate::xml::{self, Element, Limits};

/// The version of the standard a modulo follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Versione {
    /// April 2011 baseline.
    #[serde(rename = "2.0")]
    V2_0,
    /// January 2012: rettifica by `codice…precedente`, 25-character codes, 6-segment professions.
    #[serde(rename = "rev038")]
    Rev038,
    /// January 2014, Vacancy only: Rev.038 with a mandatory `AltreInformazioni/N.O.` (nulla
    /// osta). A Candidatura or Messaggio under it follows Rev.038.
    #[serde(rename = "rev064")]
    Rev064,
}

impl Versione {
    pub fn as_str(self) -> &'static str {
        match self {
            Versione::V2_0 => "2.0",
            Versione::Rev038 => "rev038",
            Versione::Rev064 => "rev064",
        }
    }
    pub fn parse(s: &str) -> Option<Versione> {
        match s {
            "2.0" | "2" => Some(Versione::V2_0),
            "rev038" | "Rev.038" | "038" => Some(Versione::Rev038),
            "rev064" | "Rev.064" | "064" => Some(Versione::Rev064),
            _ => None,
        }
    }

    /// Whether the January 2012 rules hold (rettifica by `codice…precedente`, 25-character
    /// codes, 6-segment professions): Rev.038 and what followed it.
    pub fn dal_2012(self) -> bool {
        self != Versione::V2_0
    }

    /// The version a kind actually follows under this one (Rev.064 changed the Vacancy only).
    pub fn per(self, t: Tipo) -> Versione {
        match (self, t) {
            (_, Tipo::Messaggio) => Versione::Rev038,
            (Versione::Rev064, Tipo::Candidatura) => Versione::Rev038,
            (v, _) => v,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Livello {
    /// Decided by the XSD.
    Schema,
    /// Code tables, check digits and the document's rules.
    Rule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problema {
    /// `Candidatura/Lavoratore/DatiAnagrafici/codicefiscale`; `[n]` marks repeated elements.
    pub path: String,
    /// A stable code (`XSD_FORMATO`, `CF_CONTROLLO`, …).
    pub code: String,
    /// Italian, for the operator who must fix it.
    pub message: String,
    pub level: Livello,
}

impl std::fmt::Display for Problema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} [{}]", self.path, self.message, self.code)
    }
}

/// The expiry date the node applies (document §2.2/§2.3: at most 45 days for a Candidatura,
/// 30 for a Vacancy, after receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scadenza {
    /// What the modulo said (none: absent).
    pub indicata: Option<String>,
    pub applicata: NaiveDate,
    /// The date was missing or too far and was set to the maximum.
    pub corretta: bool,
}

/// The verdict on one modulo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdetto {
    pub tipo: Option<Tipo>,
    pub versione: Option<Versione>,
    pub problemi: Vec<Problema>,
    #[serde(skip)]
    pub modulo: Option<Modulo>,
    pub scadenza: Option<Scadenza>,
}

impl Verdetto {
    pub fn valido(&self) -> bool {
        self.problemi.is_empty()
    }
    /// The XSD-level verdict alone.
    pub fn valido_schema(&self) -> bool {
        !self.problemi.iter().any(|p| p.level == Livello::Schema)
    }

    /// Adds the rules that ask what the node already holds (a rettifica names a known
    /// communication, a new one does not reuse a known code): `esiste` says whether a code of a
    /// kind is stored. [`valida`] leaves them out, so that it needs nothing but the bytes; a
    /// node asks its store and then calls this.
    pub fn esistenza(&mut self, esiste: &Esiste<'_>) {
        let (Some(m), Some(v)) = (&self.modulo, self.versione) else {
            return;
        };
        let rifiutati: Vec<String> = self
            .problemi
            .iter()
            .filter(|p| p.level == Livello::Schema)
            .map(|p| p.path.clone())
            .collect();
        let nuovi = regole::esistenza(m, v, esiste);
        self.problemi
            .extend(nuovi.into_iter().filter(|p| !rifiutati.contains(&p.path)));
    }
}

/// Tells whether a code of a kind is already known.
pub type Esiste<'a> = dyn Fn(Tipo, &str) -> bool + 'a;

/// What the validator needs from outside.
#[derive(Clone, Copy)]
pub struct Contesto {
    /// Day of receipt: validity is counted from it, and dates of birth must precede it.
    pub ricevuto: NaiveDate,
    /// Force a version instead of detecting it from the content.
    pub versione: Option<Versione>,
}

/// Days of validity after receipt.
pub fn validita(t: Tipo) -> Option<u64> {
    match t {
        Tipo::Candidatura => Some(45),
        Tipo::Vacancy => Some(30),
        Tipo::Messaggio => None,
    }
}

const XSD_FILES: [(Tipo, Versione, &str); 6] = [
    (
        Tipo::Candidatura,
        Versione::V2_0,
        include_str!("../../xsd/cliclavoro-candidatura-2.0.xsd"),
    ),
    (
        Tipo::Candidatura,
        Versione::Rev038,
        include_str!("../../xsd/cliclavoro-candidatura-rev038.xsd"),
    ),
    (
        Tipo::Vacancy,
        Versione::V2_0,
        include_str!("../../xsd/cliclavoro-vacancy-2.0.xsd"),
    ),
    (
        Tipo::Vacancy,
        Versione::Rev038,
        include_str!("../../xsd/cliclavoro-vacancy-rev038.xsd"),
    ),
    (
        Tipo::Vacancy,
        Versione::Rev064,
        include_str!("../../xsd/cliclavoro-vacancy-rev064.xsd"),
    ),
    (
        Tipo::Messaggio,
        Versione::Rev038,
        include_str!("../../xsd/cliclavoro-messaggio-rev038.xsd"),
    ),
];

/// The project's schema for a kind and version (Messaggio exists in Rev.038 only).
pub fn schema(t: Tipo, v: Versione) -> &'static xsd::Schema {
    static S: OnceLock<Vec<(Tipo, Versione, xsd::Schema)>> = OnceLock::new();
    let all = S.get_or_init(|| {
        XSD_FILES
            .iter()
            .map(|(t, v, text)| {
                // The files ship with the binary and are tested: a failure here is a build defect.
                let s = xsd::Schema::load(text, Some(t.radice())).unwrap_or_else(|e| {
                    panic!("embedded schema {} {}: {e}", t.as_str(), v.as_str())
                });
                (*t, *v, s)
            })
            .collect()
    });
    let v = v.per(t);
    all.iter()
        .find(|(a, b, _)| *a == t && *b == v)
        .map(|(_, _, s)| s)
        .unwrap_or(&all[0].2)
}

/// The version a document follows, from what only one version has.
pub fn rileva_versione(t: Tipo, root: &Element) -> Versione {
    // Borrowed, not cloned: DatiCurriculari is most of a large CV.
    fn child<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
        e.children.iter().find(|c| c.local == name)
    }
    let vuoto = Element::default();
    let sei_segmenti = |s: &str| s.trim().matches('.').count() == 5;
    match t {
        Tipo::Messaggio => Versione::Rev038,
        Tipo::Candidatura => {
            let ds = child(root, "DatiSistema").unwrap_or(&vuoto);
            let rev = child(ds, "codicecandidaturaprecedente").is_some()
                || child(ds, "datainserimento").is_some_and(|d| d.text.contains('T'))
                || child(root, "DatiCurriculari").is_some_and(|dc| {
                    dc.children
                        .iter()
                        .filter(|p| p.local == "ProfessioneDesiderataDisponibilita")
                        .any(|p| child(p, "idprofessione").is_some_and(|i| sei_segmenti(&i.text)))
                });
            if rev {
                Versione::Rev038
            } else {
                Versione::V2_0
            }
        }
        Tipo::Vacancy => {
            let ds = child(root, "DatiSistema").unwrap_or(&vuoto);
            let richiesta = child(root, "Richiesta").unwrap_or(&vuoto);
            // Only Rev.064 has AltreInformazioni.
            if child(root, "AltreInformazioni").is_some() {
                return Versione::Rev064;
            }
            let rev = child(ds, "codiceoffertaprecedente").is_some()
                || child(richiesta, "DurataRichiesta")
                    .and_then(|d| child(d, "datapubblicazione"))
                    .is_some_and(|d| d.text.contains('T'))
                || child(richiesta, "ProfiloRichiesto")
                    .and_then(|p| child(p, "idprofessione"))
                    .is_some_and(|i| sei_segmenti(&i.text));
            if rev {
                Versione::Rev038
            } else {
                Versione::V2_0
            }
        }
    }
}

/// A problem of the document's rules (level `rule`), for rules judged outside [`valida`].
pub fn problema_regola(
    path: impl Into<String>,
    code: &str,
    message: impl Into<String>,
) -> Problema {
    problema(path, code, message, Livello::Rule)
}

fn problema(
    path: impl Into<String>,
    code: &str,
    message: impl Into<String>,
    level: Livello,
) -> Problema {
    Problema {
        path: path.into(),
        code: code.to_string(),
        message: message.into(),
        level,
    }
}

/// Turns a schema violation into a problem with a code and an Italian message.
fn da_violazione(v: xsd::Violazione) -> Problema {
    use xsd::Difetto::*;
    let (code, msg) = match v.difetto {
        Radice { atteso } => (
            "XSD_RADICE",
            format!("l'elemento radice deve essere {atteso}"),
        ),
        Mancante { elemento } => (
            "XSD_MANCANTE",
            format!("manca l'elemento obbligatorio {elemento}"),
        ),
        Inatteso { elemento } => (
            "XSD_NON_PREVISTO",
            format!("l'elemento {elemento} non è previsto in questa posizione"),
        ),
        FuoriOrdine { elemento } => (
            "XSD_ORDINE",
            format!("l'elemento {elemento} è fuori ordine"),
        ),
        Troppi { elemento, max } => (
            "XSD_RIPETUTO",
            format!(
                "l'elemento {elemento} può comparire al massimo {max} volt{}",
                if max == 1 { "a" } else { "e" }
            ),
        ),
        Testo => (
            "XSD_TESTO",
            "testo non ammesso: l'elemento contiene solo altri elementi".to_string(),
        ),
        Figli => (
            "XSD_CONTENUTO",
            "l'elemento non può contenere altri elementi".to_string(),
        ),
        Attributo { nome } => ("XSD_ATTRIBUTO", format!("attributo {nome} non previsto")),
        Pattern { valore, patterns } => (
            "XSD_FORMATO",
            format!(
                "il valore '{valore}' non rispetta il formato {}",
                patterns.join(" oppure ")
            ),
        ),
        Enumerazione { valore, ammessi } => (
            "XSD_VALORE",
            format!(
                "il valore '{valore}' non è tra quelli ammessi ({})",
                ammessi.join(", ")
            ),
        ),
        Lunghezza { len, min, max, .. } => (
            "XSD_LUNGHEZZA",
            match (min, max) {
                (Some(a), Some(b)) if a == b => {
                    format!("il valore ha {len} caratteri invece di {a}")
                }
                (Some(a), Some(b)) => {
                    format!("il valore ha {len} caratteri: ne sono ammessi da {a} a {b}")
                }
                (Some(a), None) => format!("il valore ha {len} caratteri: ne servono almeno {a}"),
                (None, Some(b)) => {
                    format!("il valore ha {len} caratteri: ne sono ammessi al massimo {b}")
                }
                (None, None) => format!("il valore ha {len} caratteri"),
            },
        ),
        Data { valore } => (
            "XSD_DATA",
            format!("'{valore}' non è una data valida (AAAA-MM-GG)"),
        ),
        DataOra { valore } => (
            "XSD_DATAORA",
            format!("'{valore}' non è una data e ora valida (AAAA-MM-GGThh:mm:ss)"),
        ),
    };
    problema(v.path, code, msg, Livello::Schema)
}

/// Judges a modulo. Only the bytes are needed; the result says what kind and version it is.
pub fn valida(bytes: &[u8], ctx: &Contesto) -> Verdetto {
    let mut esito = Verdetto {
        tipo: None,
        versione: None,
        problemi: Vec::new(),
        modulo: None,
        scadenza: None,
    };
    let root = match xml::parse_document(bytes, Limits::default()) {
        Ok(r) => r,
        Err(e) => {
            esito.problemi.push(problema(
                "/",
                "XML_NON_BEN_FORMATO",
                format!("il modulo non è XML ben formato: {e}"),
                Livello::Schema,
            ));
            return esito;
        }
    };
    let Some(tipo) = Tipo::di(&root) else {
        esito.problemi.push(problema(
            root.local.clone(),
            "MODULO_SCONOSCIUTO",
            format!(
                "l'elemento radice {{{}}}{} non è una Candidatura, una Vacancy né un Messaggio",
                root.ns.as_deref().unwrap_or(""),
                root.local
            ),
            Livello::Schema,
        ));
        return esito;
    };
    let versione = match (tipo, ctx.versione) {
        (Tipo::Messaggio, _) => Versione::Rev038,
        (_, Some(v)) => v.per(tipo),
        (_, None) => rileva_versione(tipo, &root),
    };
    esito.tipo = Some(tipo);
    esito.versione = Some(versione);
    esito.problemi.extend(
        schema(tipo, versione)
            .validate(&root)
            .into_iter()
            .map(da_violazione),
    );
    let modulo = Modulo::leggi(&root);
    if let Some(m) = &modulo {
        let schema_paths: Vec<String> = esito.problemi.iter().map(|p| p.path.clone()).collect();
        let regole = regole::verifica(m, versione, ctx);
        // A field the schema already refused is not judged again.
        esito.problemi.extend(
            regole
                .into_iter()
                .filter(|r| !schema_paths.contains(&r.path)),
        );
        esito.scadenza = scadenza(m, ctx.ricevuto);
    }
    esito.modulo = modulo;
    esito
}

/// The expiry the node applies: the modulo's own date, unless missing or beyond the maximum.
pub fn scadenza(m: &Modulo, ricevuto: NaiveDate) -> Option<Scadenza> {
    let days = validita(m.tipo())?;
    let massima = ricevuto.checked_add_days(Days::new(days))?;
    let indicata = m.validita().and_then(|(_, s)| s).map(str::to_string);
    let parsed = indicata.as_deref().and_then(regole::data);
    Some(match parsed {
        Some(d) if d <= massima => Scadenza {
            indicata,
            applicata: d,
            corretta: false,
        },
        _ => Scadenza {
            indicata,
            applicata: massima,
            corretta: true,
        },
    })
}

/// Finds the modulo inside a whole SOAP message (the escaped string of `invio*`), if it is one.
pub fn estrai_da_soap(bytes: &[u8]) -> Option<String> {
    let env = crate::soap::Envelope::parse(bytes, Limits::default()).ok()?;
    let body = env.body_tree(Limits::default()).ok()??;
    let op = ws::OPERAZIONI
        .iter()
        .find(|o| body.is(ws::NS_TYPES, o.request))?;
    let param = body.children.iter().find(|c| c.local == op.param)?;
    Some(param.text.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [&str; 8] = [
        include_str!("../../examples/moduli/candidatura-2.0.xml"),
        include_str!("../../examples/moduli/candidatura-rev038.xml"),
        include_str!("../../examples/moduli/candidatura-rev038-rettifica.xml"),
        include_str!("../../examples/moduli/candidatura-rev038-chiusura.xml"),
        include_str!("../../examples/moduli/vacancy-2.0.xml"),
        include_str!("../../examples/moduli/vacancy-rev038.xml"),
        include_str!("../../examples/moduli/messaggio-rev038.xml"),
        include_str!("../../examples/moduli/vacancy-rev064.xml"),
    ];

    fn ctx() -> Contesto {
        Contesto {
            ricevuto: NaiveDate::from_ymd_opt(2026, 11, 24).unwrap(),
            versione: None,
        }
    }

    #[test]
    fn round_trip_parse_write_parse() {
        for s in SAMPLES {
            let first = valida(s.as_bytes(), &ctx());
            assert!(first.valido(), "{:?}", first.problemi);
            let m = first.modulo.clone().unwrap();
            let written = m.scrivi();
            let again = valida(written.as_bytes(), &ctx());
            assert!(again.valido(), "{written}\n{:?}", again.problemi);
            assert_eq!(again.modulo.unwrap(), m);
            assert_eq!(again.versione, first.versione);
        }
    }

    #[test]
    fn version_from_content_or_forced() {
        let v = |s: &str| valida(s.as_bytes(), &ctx()).versione;
        assert_eq!(v(SAMPLES[0]), Some(Versione::V2_0));
        assert_eq!(v(SAMPLES[1]), Some(Versione::Rev038));
        assert_eq!(v(SAMPLES[4]), Some(Versione::V2_0));
        assert_eq!(v(SAMPLES[5]), Some(Versione::Rev038));
        // A 2.0 Candidatura judged as Rev.038 breaks that schema.
        let forced = valida(
            SAMPLES[0].as_bytes(),
            &Contesto {
                versione: Some(Versione::Rev038),
                ..ctx()
            },
        );
        assert!(!forced.valido_schema());
        // Rev.064 (vacancies): told by its AltreInformazioni; a Rev.038 vacancy stays Rev.038.
        assert_eq!(v(SAMPLES[7]), Some(Versione::Rev064));
        let m = valida(SAMPLES[7].as_bytes(), &ctx()).modulo.unwrap();
        let Modulo::Vacancy(x) = &m else { panic!() };
        assert_eq!(x.altre_informazioni.as_ref().unwrap().nulla_osta, "SI");
        // A Rev.038 vacancy judged as Rev.064 lacks the mandatory section; a Rev.064 one
        // judged as Rev.038 has an element too many.
        let judged = |s: &str, v| {
            valida(
                s.as_bytes(),
                &Contesto {
                    versione: Some(v),
                    ..ctx()
                },
            )
        };
        let e = judged(SAMPLES[5], Versione::Rev064);
        assert!(
            e.problemi
                .iter()
                .any(|p| p.path.ends_with("AltreInformazioni")),
            "{:?}",
            e.problemi
        );
        assert!(!judged(SAMPLES[7], Versione::Rev038).valido_schema());
        // A Candidatura under Rev.064 follows Rev.038.
        let c = judged(SAMPLES[1], Versione::Rev064);
        assert!(c.valido(), "{:?}", c.problemi);
        assert_eq!(c.versione, Some(Versione::Rev038));
    }

    #[test]
    fn codes_and_precedente() {
        let m = valida(SAMPLES[2].as_bytes(), &ctx()).modulo.unwrap();
        assert_eq!(m.codice(), "SILCO26200000000000000327");
        assert_eq!(m.precedente(), Some("SILCO26200000000000000318"));
        assert_eq!(m.tipo(), Tipo::Candidatura);
    }

    #[test]
    fn validity_capping() {
        let m = valida(SAMPLES[0].as_bytes(), &ctx()).modulo.unwrap();
        // 2.0 sample: datascadenza 2027-01-04, within 45 days of 2026-11-24.
        let s = scadenza(&m, NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()).unwrap();
        assert_eq!(
            (s.applicata.to_string().as_str(), s.corretta),
            ("2027-01-04", false)
        );
        let late = scadenza(&m, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()).unwrap();
        assert_eq!(
            (late.applicata.to_string().as_str(), late.corretta),
            ("2026-12-16", true)
        );
    }
}
