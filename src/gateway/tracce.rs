//! CNIPA traces of stored exchanges (see [`crate::egov::traccia`]).

use crate::egov::traccia::{self, Messaggi, Omessa, Porta, Traccia};
use crate::store::{Direction, Exchange};
use crate::xml::Limits;

pub use crate::egov::traccia::{documento, json, xml, TipoMessaggio, NS_TRACCIAMENTO};

/// The traces of a stored exchange (with its raw messages), request first, and the messages
/// that give none. `porta`: the IdentificativoPorta of the porta that traces.
pub fn tracce(ex: &Exchange, porta: &str, limits: Limits) -> (Vec<Traccia>, Vec<Omessa>) {
    let m = Messaggi {
        seq: ex.seq,
        porta: match ex.direction {
            Direction::In => Porta::Applicativa,
            Direction::Out => Porta::Delegata,
        },
        richiesta: &ex.request,
        ora_richiesta: ex.received_at,
        risposta: &ex.response,
        ora_risposta: ex.answered_at,
    };
    traccia::tracce(&m, porta, limits)
}

/// The IdentificativoPorta of the porta that traced an exchange: the one in the Identificatore
/// we issued (of the request we sent, of the answer we gave); else that of the soggetto hosted
/// here that took part (the destinatario of what came in, the mittente of what went out); else
/// ours.
pub fn porta_locale(
    config: &crate::config::Config,
    registry: &crate::registry::Registry,
    ex: &Exchange,
) -> String {
    let nostro = match ex.direction {
        Direction::In => ex.response_id.as_deref(),
        Direction::Out => ex.request_id.as_deref(),
    };
    if let Some(id) = nostro.and_then(|i| crate::egov::Identificatore::parse(i).ok()) {
        return id.cod_pdd;
    }
    let own = config.own();
    let parte = match ex.direction {
        Direction::In => ex.destinatario.as_deref(),
        Direction::Out => ex.mittente.as_deref(),
    };
    parte
        .and_then(crate::egov::Parte::parse)
        .and_then(|p| registry.soggetto(&p))
        .filter(|s| s.parte().same(&own.parte()) || s.locale)
        .map(|s| s.porta.clone())
        .filter(|p| !p.is_empty())
        .unwrap_or(own.porta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egov::writer;
    use crate::egov::Busta;
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
