//! Diagnostic messages (busta-egov.md §3.4): what the gateway did that an operator should see,
//! each with a time, a severity on GovWay's scale, the function that emitted it, a code (the
//! EGOV_IT code when there is one), the exchange's sequence number and Identificatore when it
//! concerns one, and a message ([`Diagnostico`]). Kept in the store, indexed by time, and
//! purged with the exchanges (`[store] retention_days`). This module says which diagnostic each
//! event gives.
//!
//! Messages carry **no personal data**: they are made from fixed texts, codes, element
//! positions, parties (administrations) and services, never from a message's content, a
//! partner's free text or a modulo (codice fiscale, names, e-mail addresses live there).
//!
//! What is recorded:
//! - `errorProtocol`: every error busta and SOAP Fault the porta applicativa answers;
//! - `errorIntegration`: every failure of the porta delegata (imbustamento, the partner
//!   unreachable, its answer an error), forwards the outbox will try again or that were refused;
//! - `infoProtocol`: an error busta received from a partner, a duplicate absorbed;
//! - `infoIntegration`: start and stop, retention and the validity sweeper when they removed or
//!   changed something, forwards delivered after a retry or dropped;
//! - `fatal`: the store failing under an exchange.

use super::Shared;
pub use crate::egov::diagnostico::{Diagnostico, Filtro, Severita};
use crate::egov::{Codice, Eccezione};
use crate::store::{Exchange, Outcome, Store, StoreError, Write};

/// The stored diagnostics that pass the filter, oldest first (the last `limite` of them).
/// An unreadable entry is left out.
pub async fn elenca(store: &dyn Store, f: &Filtro) -> Result<Vec<Diagnostico>, StoreError> {
    let mut out: Vec<Diagnostico> = store
        .diagnostici(f.dal, f.al)
        .await?
        .into_iter()
        .filter(|d| f.ammette(d))
        .collect();
    if let Some(n) = f.limite {
        let via = out.len().saturating_sub(n);
        out.drain(..via);
    }
    Ok(out)
}

/// Our own eccezioni, for a message: code, position (an element path of ours) and the code's
/// text. A partner's eccezioni are named by code only ([`codici`]): their positions are the
/// partner's free text.
fn elenco_nostro(eccezioni: &[Eccezione]) -> String {
    eccezioni
        .iter()
        .map(|e| format!("{} {} ({})", e.codice, e.posizione, e.codice.descrizione()))
        .collect::<Vec<_>>()
        .join("; ")
}

fn codici(eccezioni: &[Eccezione]) -> String {
    eccezioni
        .iter()
        .map(|e| e.codice.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn da(ex: &Exchange) -> String {
    ex.mittente
        .as_deref()
        .map(|m| format!(" da {m}"))
        .unwrap_or_default()
}

/// What the porta applicativa's answer to an exchange tells the operator: every error busta
/// and Fault (errorProtocol), a duplicate absorbed (infoProtocol); nothing for a normal answer.
pub fn porta_applicativa(ex: &Exchange) -> Option<Diagnostico> {
    let principale = crate::egov::risposte::principale(&ex.eccezioni);
    let (severita, codice, messaggio) = match ex.outcome {
        // Not a porta applicativa's outcome.
        Outcome::Ok | Outcome::Sconosciuto => return None,
        Outcome::Duplicato if ex.http_status < 300 => (
            Severita::InfoProtocol,
            Codice::ID_NON_VALIDO,
            format!("busta duplicata{} assorbita (oneway)", da(ex)),
        ),
        Outcome::Duplicato => (
            Severita::ErrorProtocol,
            Codice::ID_NON_VALIDO,
            format!("busta duplicata{} rifiutata con busta di errore", da(ex)),
        ),
        Outcome::ErroreBusta => (
            Severita::ErrorProtocol,
            principale.map_or(Codice::CONTENUTO_INTESTAZIONE, |e| e.codice),
            format!(
                "busta{} rifiutata con busta di errore: {}",
                da(ex),
                elenco_nostro(&ex.eccezioni)
            ),
        ),
        Outcome::ErroreProcessamento => (
            Severita::ErrorProtocol,
            Codice::PROCESSAMENTO,
            format!(
                "busta{} accettata ma non elaborata: busta di errore EGOV_IT_300 ({})",
                da(ex),
                ex.eccezioni
                    .iter()
                    .map(|e| e.posizione.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Outcome::Fault => (
            Severita::ErrorProtocol,
            Codice::FORMATO_BUSTA,
            if ex.eccezioni.is_empty() {
                "SOAP Fault EGOV_IT_001: messaggio non leggibile o senza busta e-Gov".to_string()
            } else {
                format!(
                    "SOAP Fault EGOV_IT_001{}: struttura della busta errata: {}",
                    da(ex),
                    elenco_nostro(&ex.eccezioni)
                )
            },
        ),
    };
    Some(
        Diagnostico::new(severita, "RicezioneBuste", codice.to_string(), messaggio)
            .scambio(ex.seq, ex.request_id.as_deref()),
    )
}

/// A partner's error busta received on the porta applicativa (infoProtocol): its codes.
pub fn busta_errore_ricevuta(ex: &Exchange, ricevute: &[Eccezione]) -> Diagnostico {
    Diagnostico::new(
        Severita::InfoProtocol,
        "RicezioneBuste",
        crate::egov::risposte::principale(ricevute)
            .map_or(Codice::PROCESSAMENTO, |e| e.codice)
            .to_string(),
        format!("busta di errore ricevuta{}: {}", da(ex), codici(ricevute)),
    )
    .scambio(ex.seq, ex.request_id.as_deref())
}

/// A failure of the porta delegata (errorIntegration). Our own explanation is kept for
/// imbustamento and sending (a transport error, a registry miss); of the partner's answer only
/// the code, as the rest is the partner's text.
pub fn porta_delegata(
    ex: &Exchange,
    servizio: &str,
    azione: Option<&str>,
    funzione: crate::egov::risposte::Funzione,
    eccezione: &crate::egov::risposte::EccezioneApplicativa,
) -> Diagnostico {
    use crate::egov::risposte::{EccezioneApplicativa as E, Funzione};
    let (codice, dettaglio) = match eccezione {
        E::Busta(c, d) => (c.to_string(), (c.descrizione(), d.as_str())),
        E::Processamento(c, d) => (
            c.to_string(),
            ("Errore nel processamento del messaggio", d.as_str()),
        ),
    };
    let perche = match funzione {
        Funzione::SbustamentoRisposte => format!("risposta del partner: {codice} {}", dettaglio.0),
        _ => dettaglio.1.to_string(),
    };
    let verso = ex
        .destinatario
        .as_deref()
        .map(|d| format!(" verso {d}"))
        .unwrap_or_default();
    Diagnostico::new(
        Severita::ErrorIntegration,
        funzione.as_str(),
        codice,
        format!(
            "porta delegata {servizio}/{}{verso}: {} non riuscito: {perche}",
            azione.unwrap_or("-"),
            funzione.as_str()
        ),
    )
    .scambio(ex.seq, ex.request_id.as_deref())
}

impl Shared {
    /// Records a diagnostic now (durable with the store's next flush). A store that cannot
    /// take it is logged, nothing more.
    pub async fn diagnostica(&self, mut d: Diagnostico) {
        d.ora = self.now();
        let codice = d.codice.clone();
        if let Err(e) = self.store.apply(vec![Write::Diagnostico(d)]).await {
            tracing::warn!(error = %e, %codice, "diagnostic not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(outcome: Outcome, status: u16, eccezioni: Vec<Eccezione>) -> Exchange {
        Exchange {
            seq: 9,
            direction: crate::store::Direction::In,
            received_at: chrono::DateTime::UNIX_EPOCH.fixed_offset(),
            answered_at: None,
            request_id: Some("EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:00".into()),
            response_id: None,
            mittente: Some("SPC/EMILIA".into()),
            destinatario: Some("SPC/MinisteroLavoro".into()),
            servizio: None,
            azione: None,
            profilo: None,
            collaborazione: None,
            outcome,
            http_status: status,
            eccezioni,
            // A note may quote what the partner sent: never in a diagnostic.
            note: Some("BNCLRA85M41F205C laura@example.it".into()),
            peer: None,
            request: b"<x>BNCLRA85M41F205C</x>".to_vec(),
            response: Vec::new(),
        }
    }

    #[test]
    fn what_the_porta_applicativa_answered_and_what_the_porta_delegata_met() {
        use crate::egov::risposte::{EccezioneApplicativa, Funzione};
        assert!(porta_applicativa(&ex(Outcome::Ok, 200, vec![])).is_none());
        let d = porta_applicativa(&ex(
            Outcome::ErroreBusta,
            500,
            vec![Eccezione::grave(Codice::AZIONE, "Azione")],
        ))
        .unwrap();
        assert_eq!(d.severita, Severita::ErrorProtocol);
        assert_eq!(d.codice, "EGOV_IT_106");
        assert_eq!(d.funzione, "RicezioneBuste");
        assert_eq!(
            (d.seq, d.id.as_deref()),
            (
                Some(9),
                Some("EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:00")
            )
        );
        assert_eq!(
            d.messaggio,
            "busta da SPC/EMILIA rifiutata con busta di errore: EGOV_IT_106 Azione (Azione sconosciuta)"
        );
        let f = porta_applicativa(&ex(Outcome::Fault, 500, vec![])).unwrap();
        assert_eq!(
            (f.severita, f.codice.as_str()),
            (Severita::ErrorProtocol, "EGOV_IT_001")
        );
        let p = porta_applicativa(&ex(
            Outcome::ErroreProcessamento,
            500,
            vec![Eccezione::processamento("Servizio")],
        ))
        .unwrap();
        assert_eq!(p.codice, "EGOV_IT_300");
        assert!(p.messaggio.ends_with("(Servizio)"), "{}", p.messaggio);
        let dup = porta_applicativa(&ex(Outcome::Duplicato, 200, vec![])).unwrap();
        assert_eq!(
            (dup.severita, dup.codice.as_str()),
            (Severita::InfoProtocol, "EGOV_IT_110")
        );
        // A partner's eccezioni by code only: their positions are its free text.
        let r = busta_errore_ricevuta(
            &ex(Outcome::Ok, 200, vec![]),
            &[Eccezione::grave(Codice::MITTENTE, "BNCLRA85M41F205C")],
        );
        assert_eq!(
            r.messaggio,
            "busta di errore ricevuta da SPC/EMILIA: EGOV_IT_101"
        );
        let mut out = ex(Outcome::ErroreProcessamento, 500, vec![]);
        out.direction = crate::store::Direction::Out;
        let inoltro = porta_delegata(
            &out,
            "ClicLavoro",
            Some("InvioCandidatura"),
            Funzione::InoltroBuste,
            &EccezioneApplicativa::Processamento(
                Codice::PROCESSAMENTO,
                "cannot reach http://127.0.0.1:9/pdd/PA: connection refused".into(),
            ),
        );
        assert_eq!(inoltro.severita, Severita::ErrorIntegration);
        assert_eq!(inoltro.funzione, "InoltroBuste");
        assert_eq!(
            inoltro.messaggio,
            "porta delegata ClicLavoro/InvioCandidatura verso SPC/MinisteroLavoro: InoltroBuste non riuscito: cannot reach http://127.0.0.1:9/pdd/PA: connection refused"
        );
        let risposta = porta_delegata(
            &out,
            "ClicLavoro",
            None,
            Funzione::SbustamentoRisposte,
            &EccezioneApplicativa::Busta(Codice::MITTENTE, "BNCLRA85M41F205C".into()),
        );
        assert!(risposta.messaggio.ends_with(
            "SbustamentoRisposte non riuscito: risposta del partner: EGOV_IT_101 Identificativo della parte Mittente sconosciuto"
        ), "{}", risposta.messaggio);
        for d in [d, f, p, dup, r, inoltro, risposta] {
            assert!(!d.messaggio.contains("BNCLRA85M41F205C") && !d.messaggio.contains('@'));
        }
    }
}
