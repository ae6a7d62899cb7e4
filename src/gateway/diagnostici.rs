//! Diagnostic messages (busta-egov.md §3.4): what the gateway did that an operator should see,
//! each with a time, a severity on GovWay's scale, the function that emitted it, a code (the
//! EGOV_IT code when there is one), the exchange's sequence number and Identificatore when it
//! concerns one, and a message. Kept in the store's `diagnostici` tree, keyed by time, and
//! purged with the exchanges (`[store] retention_days`).
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

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::Gateway;
use crate::egov::{Codice, Eccezione};
use crate::store::{Exchange, Outcome, Scrittura, Store, StoreError};

/// The store's tree.
pub const ALBERO: &str = "diagnostici";

/// GovWay's severity levels (`LogLevels`): 0 is the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severita {
    Fatal,
    ErrorProtocol,
    ErrorIntegration,
    InfoProtocol,
    InfoIntegration,
    DebugLow,
    DebugMedium,
    DebugHigh,
}

const TUTTE: [Severita; 8] = [
    Severita::Fatal,
    Severita::ErrorProtocol,
    Severita::ErrorIntegration,
    Severita::InfoProtocol,
    Severita::InfoIntegration,
    Severita::DebugLow,
    Severita::DebugMedium,
    Severita::DebugHigh,
];

impl Severita {
    /// 0 (fatal) … 7 (debugHigh).
    pub fn livello(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severita::Fatal => "fatal",
            Severita::ErrorProtocol => "errorProtocol",
            Severita::ErrorIntegration => "errorIntegration",
            Severita::InfoProtocol => "infoProtocol",
            Severita::InfoIntegration => "infoIntegration",
            Severita::DebugLow => "debugLow",
            Severita::DebugMedium => "debugMedium",
            Severita::DebugHigh => "debugHigh",
        }
    }

    /// A name (`errorProtocol`, `error_protocol`, `ERROR-PROTOCOL`: case, `_` and `-` do not
    /// matter) or a level 0–7.
    pub fn parse(s: &str) -> Option<Severita> {
        let s = s.trim();
        if let Ok(n) = s.parse::<usize>() {
            return TUTTE.get(n).copied();
        }
        let norm = |x: &str| {
            x.chars()
                .filter(|c| *c != '_' && *c != '-')
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let s = norm(s);
        TUTTE.into_iter().find(|l| norm(l.as_str()) == s)
    }
}

impl std::fmt::Display for Severita {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Severita {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severita {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Severita::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown severity {s}")))
    }
}

/// One diagnostic message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostico {
    /// RFC 3339, milliseconds.
    pub ora: String,
    pub severita: Severita,
    /// GovWay's IdentificativoFunzione: `RicezioneBuste` (porta applicativa), `Imbustamento`,
    /// `InoltroBuste`, `SbustamentoRisposte` (porta delegata), `Outbox`, `Conservazione`,
    /// `Scadenze`, `Avvio`, `Store`.
    pub funzione: String,
    /// The EGOV_IT code, or one of pdd's (`PDD_…`).
    pub codice: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The Identificatore of the busta concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub messaggio: String,
}

impl Diagnostico {
    pub fn new(
        severita: Severita,
        funzione: &str,
        codice: impl Into<String>,
        messaggio: impl Into<String>,
    ) -> Diagnostico {
        Diagnostico {
            ora: String::new(),
            severita,
            funzione: funzione.to_string(),
            codice: codice.into(),
            seq: None,
            id: None,
            messaggio: messaggio.into(),
        }
    }

    /// About an exchange (and its busta's Identificatore).
    pub fn scambio(mut self, seq: u64, id: Option<&str>) -> Diagnostico {
        self.seq = Some(seq);
        self.id = id.map(str::to_string);
        self
    }

    /// Its time in ms since the epoch.
    pub fn ms(&self) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(&self.ora)
            .ok()
            .map(|t| t.timestamp_millis())
    }

    /// JSON with the numeric level beside the name.
    pub fn json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["livello"] = self.severita.livello().into();
        v
    }
}

/// The key of a diagnostic written at `ms`: the time (13 digits, so keys sort by time), then a
/// counter that keeps apart those of the same millisecond.
pub fn chiave(ms: i64) -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:013}-{:010}",
        ms.max(0),
        N.fetch_add(1, Ordering::Relaxed) % 10_000_000_000
    )
    .into_bytes()
}

/// The time (ms) a key starts with.
pub fn ms_della_chiave(k: &[u8]) -> Option<i64> {
    std::str::from_utf8(k.get(..13)?).ok()?.parse().ok()
}

/// What `pdd diag list` selects: a time range (`dal` included, `al` excluded, ms since the
/// epoch), severities at or above `soglia` (as severe or more: fatal is 0), the last `limite`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filtro {
    pub dal: Option<i64>,
    pub al: Option<i64>,
    pub soglia: Option<Severita>,
    pub limite: Option<usize>,
}

impl Filtro {
    pub fn ammette(&self, d: &Diagnostico) -> bool {
        let t = d.ms().unwrap_or(0);
        self.dal.is_none_or(|x| t >= x)
            && self.al.is_none_or(|x| t < x)
            && self.soglia.is_none_or(|s| d.severita <= s)
    }
}

/// The stored diagnostics that pass the filter, oldest first (the last `limite` of them).
/// An unreadable entry is left out.
pub fn elenca(store: &dyn Store, f: &Filtro) -> Result<Vec<Diagnostico>, StoreError> {
    let mut out: Vec<Diagnostico> = store
        .elenca(ALBERO, b"")?
        .into_iter()
        .filter(|(k, _)| {
            let t = ms_della_chiave(k).unwrap_or(0);
            f.dal.is_none_or(|x| t >= x) && f.al.is_none_or(|x| t < x)
        })
        .filter_map(|(_, v)| serde_json::from_slice::<Diagnostico>(&v).ok())
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
    let principale = super::risposte::principale(&ex.eccezioni);
    let (severita, codice, messaggio) = match ex.outcome {
        Outcome::Ok => return None,
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
        super::risposte::principale(ricevute)
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
    funzione: super::risposte::Funzione,
    eccezione: &super::risposte::EccezioneApplicativa,
) -> Diagnostico {
    use super::risposte::{EccezioneApplicativa as E, Funzione};
    let (codice, dettaglio) = match eccezione {
        E::Busta(c, d) => (c.to_string(), (c.descrizione(), d.as_str())),
        E::Processamento(c, d) => (
            c.clone(),
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

impl Gateway {
    /// Records a diagnostic now (durable with the store's next flush). A store that cannot
    /// take it is logged, nothing more.
    pub fn diagnostica(&self, mut d: Diagnostico) {
        let now = self.now();
        d.ora = now.to_rfc3339_opts(chrono::SecondsFormat::Millis, false);
        let k = chiave(now.timestamp_millis());
        if let Err(e) = self.store.scrivi(&[Scrittura::metti(ALBERO, k, &d)]) {
            tracing::warn!(error = %e, codice = %d.codice, "diagnostic not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_by_name_or_number_and_order_by_severity() {
        assert_eq!(
            Severita::parse("errorProtocol"),
            Some(Severita::ErrorProtocol)
        );
        assert_eq!(
            Severita::parse("error_integration"),
            Some(Severita::ErrorIntegration)
        );
        assert_eq!(
            Severita::parse("INFO-PROTOCOL"),
            Some(Severita::InfoProtocol)
        );
        assert_eq!(Severita::parse("0"), Some(Severita::Fatal));
        assert_eq!(Severita::parse("7"), Some(Severita::DebugHigh));
        assert_eq!(Severita::parse("8"), None);
        assert_eq!(Severita::parse("grave"), None);
        assert!(Severita::Fatal < Severita::ErrorProtocol);
        assert_eq!(Severita::InfoIntegration.livello(), 4);
        for l in TUTTE {
            assert_eq!(Severita::parse(l.as_str()), Some(l));
            assert_eq!(Severita::parse(&l.livello().to_string()), Some(l));
        }
    }

    #[test]
    fn keys_sort_by_time_and_the_filter_selects() {
        let a = chiave(1_700_000_000_000);
        let b = chiave(1_700_000_000_000);
        let c = chiave(1_800_000_000_000);
        assert!(a < b && b < c);
        assert_eq!(ms_della_chiave(&c), Some(1_800_000_000_000));
        let mut d = Diagnostico::new(
            Severita::ErrorIntegration,
            "InoltroBuste",
            "EGOV_IT_300",
            "x",
        )
        .scambio(4, Some("ID"));
        d.ora = "2026-11-27T08:00:00.000+01:00".into();
        let t = d.ms().unwrap();
        let f = |dal, al, soglia| Filtro {
            dal,
            al,
            soglia,
            limite: None,
        };
        assert!(f(None, None, None).ammette(&d));
        assert!(f(Some(t), Some(t + 1), Some(Severita::ErrorIntegration)).ammette(&d));
        assert!(f(None, None, Some(Severita::InfoProtocol)).ammette(&d));
        assert!(!f(None, None, Some(Severita::ErrorProtocol)).ammette(&d));
        assert!(!f(Some(t + 1), None, None).ammette(&d));
        assert!(!f(None, Some(t), None).ammette(&d));
        let j = d.json();
        assert_eq!(j["severita"], "errorIntegration");
        assert_eq!(j["livello"], 2);
        assert_eq!(j["seq"], 4);
        let back: Diagnostico = serde_json::from_value(j).unwrap();
        assert_eq!(back, d);
    }

    fn ex(outcome: Outcome, status: u16, eccezioni: Vec<Eccezione>) -> Exchange {
        Exchange {
            seq: 9,
            direction: crate::store::Direction::In,
            received_at: String::new(),
            answered_at: String::new(),
            request_id: Some("EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:00".into()),
            response_id: None,
            mittente: Some("SPC/EMILIA".into()),
            destinatario: Some("SPC/MinisteroLavoro".into()),
            servizio: None,
            azione: None,
            profilo: None,
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
        use crate::gateway::risposte::{EccezioneApplicativa, Funzione};
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
                "EGOV_IT_300".into(),
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
