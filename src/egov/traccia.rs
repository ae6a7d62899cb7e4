//! Traces in the CNIPA form (`Tracciamento.xsd`, busta-egov.md §3.4): one `traccia` per busta,
//! `{GDO, IdentificativoPorta, TipoMessaggio, eGov_IT:Intestazione}`, as GovWay's
//! `SPCoopTracciaSerializer` writes them. Pure: built from an exchange's raw request and
//! response, read back (the busta actually found in each), no I/O.
//!
//! An exchange gives two traces, its request's and its response's. A message without a busta
//! (a bare Fault, a local system's plain SOAP, a Fault for the local system) or whose busta
//! lacks what the schema requires (Mittente, Destinatario, Identificatore, OraRegistrazione)
//! gives none: [`tracce`] says why in [`Omessa`].
//!
//! `TipoMessaggio` is `Richiesta` or `Risposta`, the schema's only values; the direction
//! (GovWay's RichiestaIngresso, RispostaUscita, RichiestaUscita, RispostaIngresso) is in
//! [`Traccia::fase`], which the JSON form carries. The schema has no element holding several
//! traces: several are several documents (see [`documento`]).

use chrono::{DateTime, FixedOffset};
use serde::Serialize;

use super::reader::{self, Lettura};
use super::{writer, Busta};
use crate::soap::Envelope;
use crate::xml::{escape_text, Limits};

/// Namespace of `Tracciamento.xsd`.
pub const NS_TRACCIAMENTO: &str = "http://www.cnipa.it/schemas/2003/eGovIT/Tracciamento1_0/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TipoMessaggio {
    Richiesta,
    Risposta,
}

impl TipoMessaggio {
    pub fn as_str(self) -> &'static str {
        match self {
            TipoMessaggio::Richiesta => "Richiesta",
            TipoMessaggio::Risposta => "Risposta",
        }
    }
}

/// One trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Traccia {
    /// The exchange it comes from.
    pub seq: u64,
    /// When the message was received or sent (the exchange's `received_at` for the request,
    /// `answered_at` for the response).
    pub gdo: DateTime<FixedOffset>,
    /// The porta that traces: ours (the soggetto hosted here that took part).
    pub identificativo_porta: String,
    pub tipo_messaggio: TipoMessaggio,
    /// `RichiestaIngresso`, `RispostaUscita` (porta applicativa), `RichiestaUscita`,
    /// `RispostaIngresso` (porta delegata).
    pub fase: &'static str,
    /// The busta as read back from the stored message.
    pub busta: Busta,
}

/// A message of an exchange that gives no trace, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Omessa {
    pub seq: u64,
    pub tipo_messaggio: TipoMessaggio,
    pub motivo: String,
}

/// Which porta an exchange went through: the porta applicativa receives the request, the
/// porta delegata sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Porta {
    Applicativa,
    Delegata,
}

fn fase(p: Porta, t: TipoMessaggio) -> &'static str {
    match (p, t) {
        (Porta::Applicativa, TipoMessaggio::Richiesta) => "RichiestaIngresso",
        (Porta::Applicativa, TipoMessaggio::Risposta) => "RispostaUscita",
        (Porta::Delegata, TipoMessaggio::Richiesta) => "RichiestaUscita",
        (Porta::Delegata, TipoMessaggio::Risposta) => "RispostaIngresso",
    }
}

/// Why a message gives no trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Omissione {
    #[error("nessun messaggio")]
    Vuoto,
    #[error("messaggio non leggibile: {0}")]
    Illeggibile(String),
    #[error("nessuna busta e-Gov")]
    SenzaBusta,
    #[error("busta senza {0} (richiesti da Busta.xsd)")]
    Incompleta(String),
    #[error("senza ora: il messaggio non ha avuto risposta")]
    SenzaOra,
}

/// The busta found in a raw message, when it has what a trace needs.
fn busta_di(raw: &[u8], limits: Limits) -> Result<Busta, Omissione> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Omissione::Vuoto);
    }
    let env = Envelope::parse(raw, limits).map_err(|e| Omissione::Illeggibile(e.to_string()))?;
    let b = match reader::leggi(&env.header_blocks) {
        Lettura::Assente => return Err(Omissione::SenzaBusta),
        Lettura::Trovata(t) => t.busta,
    };
    let mancanti: Vec<&str> = [
        ("Mittente", b.mittente.is_none()),
        ("Destinatario", b.destinatario.is_none()),
        ("Identificatore", b.id.is_none()),
        ("OraRegistrazione", b.ora_registrazione.is_none()),
    ]
    .into_iter()
    .filter_map(|(n, manca)| manca.then_some(n))
    .collect();
    if !mancanti.is_empty() {
        return Err(Omissione::Incompleta(mancanti.join(", ")));
    }
    Ok(b)
}

/// One exchange's messages, as a trace reads them.
#[derive(Debug, Clone, Copy)]
pub struct Messaggi<'a> {
    pub seq: u64,
    pub porta: Porta,
    pub richiesta: &'a [u8],
    /// When the request was received (or sent).
    pub ora_richiesta: DateTime<FixedOffset>,
    pub risposta: &'a [u8],
    /// When it was answered; None for an exchange never answered.
    pub ora_risposta: Option<DateTime<FixedOffset>>,
}

/// The traces of an exchange, request first, and the messages that give none. `porta`: the
/// IdentificativoPorta of the porta that traces.
pub fn tracce(m: &Messaggi<'_>, porta: &str, limits: Limits) -> (Vec<Traccia>, Vec<Omessa>) {
    let mut fatte = Vec::new();
    let mut omesse = Vec::new();
    for (tipo, raw, quando) in [
        (TipoMessaggio::Richiesta, m.richiesta, Some(m.ora_richiesta)),
        (TipoMessaggio::Risposta, m.risposta, m.ora_risposta),
    ] {
        let omessa = |motivo: Omissione| Omessa {
            seq: m.seq,
            tipo_messaggio: tipo,
            motivo: motivo.to_string(),
        };
        let Some(gdo) = quando else {
            omesse.push(omessa(Omissione::SenzaOra));
            continue;
        };
        match busta_di(raw, limits) {
            Ok(busta) => fatte.push(Traccia {
                seq: m.seq,
                gdo,
                identificativo_porta: porta.to_string(),
                tipo_messaggio: tipo,
                fase: fase(m.porta, tipo),
                busta,
            }),
            Err(motivo) => omesse.push(omessa(motivo)),
        }
    }
    (fatte, omesse)
}

/// The `traccia` element.
pub fn xml(t: &Traccia) -> String {
    let gdo = t.gdo.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
    format!(
        "<eGov_IT_Trac:traccia xmlns:eGov_IT_Trac=\"{NS_TRACCIAMENTO}\"><eGov_IT_Trac:GDO>{gdo}</eGov_IT_Trac:GDO><eGov_IT_Trac:IdentificativoPorta>{}</eGov_IT_Trac:IdentificativoPorta><eGov_IT_Trac:TipoMessaggio>{}</eGov_IT_Trac:TipoMessaggio>{}</eGov_IT_Trac:traccia>",
        escape_text(&t.identificativo_porta),
        t.tipo_messaggio.as_str(),
        writer::write(&t.busta)
    )
}

/// A whole XML document holding one trace, with its declaration and a final newline.
/// `Tracciamento.xsd` declares no element for a list of traces (its only root is `traccia`),
/// so several traces are several such documents, one after the other: each starts with its
/// XML declaration, which is where a reader splits them.
pub fn documento(t: &Traccia) -> String {
    format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{}\n", xml(t))
}

/// The JSON form: the same fields, the busta as the store's model.
pub fn json(t: &Traccia) -> serde_json::Value {
    let mut v = serde_json::to_value(t).unwrap_or_default();
    v["gdo"] =
        serde_json::Value::String(t.gdo.to_rfc3339_opts(chrono::SecondsFormat::Millis, false));
    v
}
