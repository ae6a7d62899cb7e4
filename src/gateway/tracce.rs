//! Traces in the CNIPA form (`Tracciamento.xsd`, busta-egov.md §3.4): one `traccia` per busta,
//! `{GDO, IdentificativoPorta, TipoMessaggio, eGov_IT:Intestazione}`, as GovWay's
//! `SPCoopTracciaSerializer` writes them. Pure: built from a stored exchange, whose raw
//! request and response are read back (the busta actually found in each), no I/O.
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

use crate::egov::reader::{self, Lettura};
use crate::egov::{writer, Busta};
use crate::soap::Envelope;
use crate::store::{Direction, Exchange};
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

fn fase(d: Direction, t: TipoMessaggio) -> &'static str {
    match (d, t) {
        (Direction::In, TipoMessaggio::Richiesta) => "RichiestaIngresso",
        (Direction::In, TipoMessaggio::Risposta) => "RispostaUscita",
        (Direction::Out, TipoMessaggio::Richiesta) => "RichiestaUscita",
        (Direction::Out, TipoMessaggio::Risposta) => "RispostaIngresso",
    }
}

/// The busta found in a raw message, when it has what a trace needs.
fn busta_di(raw: &[u8], limits: Limits) -> Result<Busta, String> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err("nessun messaggio".into());
    }
    let env = Envelope::parse(raw, limits).map_err(|e| format!("messaggio non leggibile: {e}"))?;
    let b = match reader::leggi(&env.header_blocks) {
        Lettura::Assente => return Err("nessuna busta e-Gov".into()),
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
        return Err(format!(
            "busta senza {} (richiesti da Busta.xsd)",
            mancanti.join(", ")
        ));
    }
    Ok(b)
}

/// The traces of an exchange (with its raw messages), request first, and the messages that
/// give none. `porta`: the IdentificativoPorta of the porta that traces.
pub fn tracce(ex: &Exchange, porta: &str, limits: Limits) -> (Vec<Traccia>, Vec<Omessa>) {
    let mut fatte = Vec::new();
    let mut omesse = Vec::new();
    for (tipo, raw, quando) in [
        (TipoMessaggio::Richiesta, &ex.request, Some(ex.received_at)),
        (TipoMessaggio::Risposta, &ex.response, ex.answered_at),
    ] {
        let omessa = |motivo: String| Omessa {
            seq: ex.seq,
            tipo_messaggio: tipo,
            motivo,
        };
        let Some(gdo) = quando else {
            omesse.push(omessa(
                "senza ora: il messaggio non ha avuto risposta".into(),
            ));
            continue;
        };
        match busta_di(raw, limits) {
            Ok(busta) => fatte.push(Traccia {
                seq: ex.seq,
                gdo,
                identificativo_porta: porta.to_string(),
                tipo_messaggio: tipo,
                fase: fase(ex.direction, tipo),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egov::{Codice, Eccezione, Ora, Parte, Profilo, Servizio, Tempo};
    use crate::store::Outcome;

    fn busta(id: &str, rif: Option<&str>) -> Busta {
        Busta {
            mittente: Some(Parte::new("SPC", "EMILIA")),
            destinatario: Some(Parte::new("SPC", "MinisteroLavoro")),
            profilo: Some(Profilo::Sincrono),
            servizio: Some(Servizio {
                tipo: "SPC".into(),
                nome: "ClicLavoro".into(),
            }),
            azione: Some("InvioCandidatura".into()),
            id: Some(id.into()),
            ora_registrazione: Some(Ora {
                ora: crate::egov::time::parse("2026-11-27T08:00:00").unwrap(),
                tempo: Tempo::Spc,
            }),
            riferimento_messaggio: rif.map(str::to_string),
            ..Busta::default()
        }
    }

    fn messaggio(b: &Busta, body: &str) -> Vec<u8> {
        crate::soap::envelope(&[&writer::write(b)], body).into_bytes()
    }

    fn scambio(direction: Direction, request: Vec<u8>, response: Vec<u8>) -> Exchange {
        let mut ex = Exchange::nuovo(
            7,
            direction,
            chrono::DateTime::parse_from_rfc3339("2026-11-27T08:00:01.250+01:00").unwrap(),
        );
        ex.answered_at = chrono::DateTime::parse_from_rfc3339("2026-11-27T08:00:01.400+01:00").ok();
        ex.outcome = Outcome::Ok;
        ex.http_status = 200;
        ex.request = request;
        ex.response = response;
        ex
    }

    const REQ: &str = "EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:00";
    const RESP: &str = "MinisteroLavoro_MinisteroLavoroSPCoopIT_0000001_2026-11-27_08:00";

    #[test]
    fn an_exchange_gives_a_request_and_a_response_trace() {
        let mut risposta = busta(RESP, Some(REQ));
        std::mem::swap(&mut risposta.mittente, &mut risposta.destinatario);
        let ex = scambio(
            Direction::In,
            messaggio(&busta(REQ, None), "<a/>"),
            messaggio(&risposta, "<b/>"),
        );
        let (t, omesse) = tracce(&ex, "MinisteroLavoroSPCoopIT", Limits::default());
        assert!(omesse.is_empty(), "{omesse:?}");
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].tipo_messaggio, TipoMessaggio::Richiesta);
        assert_eq!(t[0].fase, "RichiestaIngresso");
        assert_eq!(t[1].fase, "RispostaUscita");
        assert_eq!(t[0].busta.id.as_deref(), Some(REQ));
        assert_eq!(t[1].busta.riferimento_messaggio.as_deref(), Some(REQ));
        let x = xml(&t[0]);
        assert!(x.starts_with(&format!(
            "<eGov_IT_Trac:traccia xmlns:eGov_IT_Trac=\"{NS_TRACCIAMENTO}\"><eGov_IT_Trac:GDO>2026-11-27T08:00:01.250+01:00</eGov_IT_Trac:GDO><eGov_IT_Trac:IdentificativoPorta>MinisteroLavoroSPCoopIT</eGov_IT_Trac:IdentificativoPorta><eGov_IT_Trac:TipoMessaggio>Richiesta</eGov_IT_Trac:TipoMessaggio><eGov_IT:Intestazione "
        )), "{x}");
        assert!(x.contains(&format!(
            "<eGov_IT:Identificatore>{REQ}</eGov_IT:Identificatore>"
        )));
        assert!(xml(&t[1]).contains("<eGov_IT_Trac:GDO>2026-11-27T08:00:01.400+01:00<"));
        // Each trace a document of its own, well-formed.
        let d = documento(&t[1]);
        assert!(d.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<eGov_IT_Trac:traccia"));
        crate::xml::parse_document(d.as_bytes(), Limits::default()).expect("well-formed");
        let j = json(&t[1]);
        assert_eq!(j["tipo_messaggio"], "Risposta");
        assert_eq!(j["fase"], "RispostaUscita");
        assert_eq!(j["gdo"], "2026-11-27T08:00:01.400+01:00");
        assert_eq!(j["busta"]["riferimento_messaggio"], REQ);
    }

    #[test]
    fn porta_delegata_phases_and_the_eccezioni_of_an_error_busta() {
        let mut errore = busta(RESP, Some(REQ));
        std::mem::swap(&mut errore.mittente, &mut errore.destinatario);
        errore.eccezioni = Some(vec![Eccezione::grave(Codice::AZIONE, "Azione")]);
        let ex = scambio(
            Direction::Out,
            messaggio(&busta(REQ, None), "<a/>"),
            messaggio(
                &errore,
                &crate::soap::fault(
                    crate::soap::FaultCode::Client,
                    crate::egov::FAULT_VALIDAZIONE,
                    None,
                    None,
                ),
            ),
        );
        let (t, _) = tracce(&ex, "EMILIASPCoopIT", Limits::default());
        assert_eq!(
            t.iter().map(|t| t.fase).collect::<Vec<_>>(),
            ["RichiestaUscita", "RispostaIngresso"]
        );
        let x = xml(&t[1]);
        assert!(x.contains("<eGov_IT:ListaEccezioni><eGov_IT:Eccezione contestoCodifica=\"ErroreIntestazioneMessaggioSPCoop\" codiceEccezione=\"EGOV_IT_106\" rilevanza=\"GRAVE\" posizione=\"Azione\"/></eGov_IT:ListaEccezioni>"), "{x}");
    }

    #[test]
    fn messages_without_a_whole_busta_give_no_trace() {
        let mut senza_mittente = busta(REQ, None);
        senza_mittente.mittente = None;
        for (request, response, motivi) in [
            (
                b"not xml".to_vec(),
                crate::soap::envelope(&[], "<x/>").into_bytes(),
                ["messaggio non leggibile", "nessuna busta e-Gov"],
            ),
            (
                messaggio(&senza_mittente, "<a/>"),
                Vec::new(),
                ["busta senza Mittente", "nessun messaggio"],
            ),
        ] {
            let ex = scambio(Direction::In, request, response);
            let (t, omesse) = tracce(&ex, "P", Limits::default());
            assert!(t.is_empty());
            assert_eq!(omesse.len(), 2);
            for (o, m) in omesse.iter().zip(motivi) {
                assert!(o.motivo.starts_with(m), "{o:?}");
            }
            assert_eq!(omesse[1].tipo_messaggio, TipoMessaggio::Risposta);
        }
    }
}
