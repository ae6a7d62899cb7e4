//! The gateway's errors, and the one place where they become EGOV_IT codes, Faults and
//! outcomes: what the porta applicativa answers a partner ([`PaError`]), what the porta
//! delegata answers a local system ([`PdError`]), and the gateway's own failures (start,
//! partners, reload: [`GatewayError`]).

use std::path::PathBuf;

use crate::egov::risposte::{self, EccezioneApplicativa, Funzione};
use crate::egov::{Codice, Eccezione};
use crate::soap::{self, FaultCode};
use crate::store::{Outcome, StoreError};
use crate::wssec::dsig::FirmaError;
use crate::wssec::SignerError;

/// A failure of the gateway itself: at start, adding a partner, reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    #[error("[tls]: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("[tls] key: signing buste (RSA-SHA256) needs an RSA key; set [wssec] firma = false or use an RSA key")]
    ChiaveNonRsa,
    #[error("[tls] cert: {0}")]
    Certificato(String),
    #[error("[tls] ca {path}: {err}")]
    Ca { path: PathBuf, err: String },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Partner(#[from] PartnerError),
}

/// What is wrong with a partner being added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartnerError {
    #[error("nome '{0}': only letters and digits (it forms the Identificatore)")]
    Nome(String),
    #[error("url '{0}': use https:// (or http:// on loopback)")]
    Url(String),
    #[error("certificato: {0}")]
    Certificato(String),
}

/// The eccezione a signature that does not verify raises (busta-egov.md §2.1, §3.5).
pub fn eccezione_firma(e: &FirmaError) -> Eccezione {
    match e {
        FirmaError::Politica(_) => Eccezione::grave(Codice::SICUREZZA, "Security"),
        FirmaError::Intestazione(_) => Eccezione::grave(Codice::FIRMA, "Intestazione"),
        FirmaError::Xml(_) => Eccezione::grave(Codice::FIRMA_XML, "Security/Signature"),
        FirmaError::Firma(_) => Eccezione::processamento("Security"),
    }
}

/// The eccezione a certificate that may not sign for the Mittente raises: another party's
/// certificate is a Mittente not authorised, an unknown one a security policy failure.
pub fn eccezione_firmatario(e: &SignerError) -> Eccezione {
    match e {
        SignerError::Altrui { .. } => {
            Eccezione::grave(Codice::MITTENTE_NON_AUTORIZZATO, "Mittente")
        }
        _ => Eccezione::grave(Codice::SICUREZZA, "Security/BinarySecurityToken"),
    }
}

/// Why the porta applicativa answers otherwise than with its service's answer.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PaError {
    /// A SOAP 1.2 envelope: a VersionMismatch Fault.
    Soap12,
    /// A header entry for us with `mustUnderstand="1"` that we do not understand (its
    /// `{namespace}name`): a MustUnderstand Fault (SOAP 1.1 §4.2.3).
    MustUnderstand(String),
    /// No busta could be read, or its structure is broken: a bare Fault EGOV_IT_001.
    Fault001 {
        motivo: String,
        eccezioni: Vec<Eccezione>,
    },
    /// An error busta with these eccezioni; processing errors (EGOV_IT_300 only) carry no
    /// ListaEccezioni but a detail for the operator.
    Busta {
        eccezioni: Vec<Eccezione>,
        dettaglio: Option<String>,
    },
    /// A repeated Identificatore (first processed by exchange `primo`), refused with an error
    /// busta EGOV_IT_110.
    Duplicato { primo: u64 },
    /// The store failed: nothing can be recorded, a bare processing Fault.
    Store(StoreError),
    /// Our own signature failed (signing is on): the answer is not sent unsigned, a bare
    /// processing Fault.
    Firma(FirmaError),
}

impl PaError {
    /// A validation error busta.
    pub fn busta(eccezioni: Vec<Eccezione>, dettaglio: impl Into<Option<String>>) -> PaError {
        PaError::Busta {
            eccezioni,
            dettaglio: dettaglio.into(),
        }
    }

    /// A processing error busta (EGOV_IT_300) at `posizione`, with a detail for the operator.
    pub fn processamento(posizione: &str, dettaglio: impl Into<String>) -> PaError {
        PaError::Busta {
            eccezioni: vec![Eccezione::processamento(posizione)],
            dettaglio: Some(dettaglio.into()),
        }
    }

    /// How the exchange is recorded.
    pub fn outcome(&self) -> Outcome {
        match self {
            PaError::Soap12 | PaError::MustUnderstand(_) | PaError::Fault001 { .. } => {
                Outcome::Fault
            }
            PaError::Busta { eccezioni, .. }
                if eccezioni.iter().all(|e| e.codice == Codice::PROCESSAMENTO) =>
            {
                Outcome::ErroreProcessamento
            }
            PaError::Busta { .. } => Outcome::ErroreBusta,
            PaError::Duplicato { .. } => Outcome::Duplicato,
            PaError::Store(_) | PaError::Firma(_) => Outcome::ErroreProcessamento,
        }
    }

    /// The eccezioni an error busta carries (and the record keeps).
    pub fn eccezioni(&self) -> Vec<Eccezione> {
        match self {
            PaError::Fault001 { eccezioni, .. } | PaError::Busta { eccezioni, .. } => {
                eccezioni.clone()
            }
            PaError::Duplicato { .. } => vec![Eccezione::grave(
                Codice::ID_NON_VALIDO,
                "Messaggio/Identificatore",
            )],
            _ => Vec::new(),
        }
    }

    /// The note the record keeps.
    pub fn nota(&self) -> Option<String> {
        match self {
            PaError::Soap12 => Some("SOAP 1.2 envelope".into()),
            PaError::MustUnderstand(h) => {
                Some(format!("mustUnderstand header not understood: {h}"))
            }
            PaError::Fault001 { motivo, .. } => Some(motivo.clone()),
            PaError::Busta {
                dettaglio: Some(d), ..
            } => Some(d.clone()),
            PaError::Busta { eccezioni, .. } => Some(super::elenco(eccezioni)),
            PaError::Duplicato { primo } => Some(format!("duplicato dello scambio {primo}")),
            PaError::Store(e) => Some(e.to_string()),
            PaError::Firma(e) => Some(e.to_string()),
        }
    }

    /// The whole answer when it is a bare Fault (no error busta): its body.
    pub fn fault(&self) -> Option<String> {
        match self {
            PaError::Soap12 => Some(soap::envelope(
                &[],
                &soap::fault(
                    FaultCode::VersionMismatch,
                    "SOAP 1.2 non supportato: la busta e-Gov richiede SOAP 1.1",
                    None,
                    None,
                ),
            )),
            PaError::MustUnderstand(h) => Some(soap::envelope(
                &[],
                &soap::fault(
                    FaultCode::MustUnderstand,
                    &format!("header non compreso: {h} (mustUnderstand=\"1\")"),
                    None,
                    None,
                ),
            )),
            // Why, for the sender's operator: the faultstring stays the standard's.
            PaError::Fault001 { motivo, .. } if !motivo.is_empty() => Some(soap::envelope(
                &[],
                &soap::fault(
                    FaultCode::Client,
                    crate::egov::FAULT_VALIDAZIONE,
                    None,
                    Some(&format!(
                        "<pdd:dettaglio xmlns:pdd=\"urn:pdd:errore\">{}</pdd:dettaglio>",
                        crate::xml::escape_text(motivo)
                    )),
                ),
            )),
            PaError::Fault001 { .. } => Some(risposte::fault_001()),
            PaError::Store(_) | PaError::Firma(_) => Some(risposte::fault_processamento()),
            PaError::Busta { .. } | PaError::Duplicato { .. } => None,
        }
    }

    /// The operator's detail inside an error busta's Fault.
    pub fn dettaglio_xml(&self) -> Option<String> {
        match self {
            PaError::Busta {
                dettaglio: Some(d), ..
            } => Some(format!(
                "<pdd:dettaglio xmlns:pdd=\"urn:pdd:errore\">{}</pdd:dettaglio>",
                crate::xml::escape_text(d)
            )),
            _ => None,
        }
    }
}

/// A request refused before the gateway reads it (by the shell, on the gateway's limits): each
/// answered with a SOAP Fault saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpRefusal {
    /// The body is larger than `max_body_bytes`: 413, EGOV_IT_001's Fault.
    TooLarge { max: usize },
    /// The body could not be read: 400.
    Unreadable(String),
    /// The body did not arrive within the request timeout: 408.
    TooSlow,
    /// The body arrived slower than `min_body_rate`: 408.
    TooSlowRate { min: u64 },
    /// Not SOAP 1.1 by its Content-Type (none, or another): 415 (WS-I Basic Profile R1115).
    NotSoap11 { content_type: Option<String> },
    /// A partner over its limit of exchanges in progress: 503, Retry-After.
    PartnerBusy { partner: String, limit: usize },
    /// No room for the body among the bodies in progress: 503, Retry-After.
    NoRoom { bytes: usize },
    /// The partner's bodies in progress hold its whole share: 503, Retry-After.
    ShareFull {
        partner: String,
        used: u64,
        share: u64,
    },
    /// A porta delegata path without a servizio: 404.
    PdPath,
}

impl HttpRefusal {
    /// The answer: status, the SOAP Fault, and `Retry-After` when trying again helps.
    pub fn answer(&self) -> super::Answer {
        let fault = |code, text: &str, detail: Option<&str>| {
            soap::envelope(&[], &soap::fault(code, text, None, detail))
        };
        let occupato = |motivo: String| {
            let detail = format!(
                "<pdd:Limite xmlns:pdd=\"urn:pdd:limiti\">{}</pdd:Limite>",
                crate::xml::escape_text(&motivo)
            );
            fault(
                FaultCode::Server,
                crate::egov::FAULT_PROCESSAMENTO,
                Some(&detail),
            )
        };
        let (status, body) = match self {
            HttpRefusal::TooLarge { max } => (
                413,
                fault(
                    FaultCode::Client,
                    &format!(
                        "{} - il messaggio supera il limite di {max} byte",
                        Codice::FORMATO_BUSTA
                    ),
                    None,
                ),
            ),
            HttpRefusal::Unreadable(e) => (
                400,
                fault(FaultCode::Client, &format!("body unreadable: {e}"), None),
            ),
            HttpRefusal::TooSlow => (
                408,
                fault(FaultCode::Client, "body not received in time", None),
            ),
            HttpRefusal::TooSlowRate { min } => (
                408,
                fault(
                    FaultCode::Client,
                    &format!("body arriving slower than {min} bytes/s (limits.min_body_rate)"),
                    None,
                ),
            ),
            HttpRefusal::NotSoap11 { content_type } => {
                let ricevuto = match content_type {
                    Some(ct) => format!("Content-Type '{ct}' non supportato"),
                    None => "Content-Type assente".to_string(),
                };
                let motivo = format!(
                    "<pdd:ContentType xmlns:pdd=\"urn:pdd:http\">{}: la busta e-Gov viaggia in SOAP 1.1, Content-Type text/xml</pdd:ContentType>",
                    crate::xml::escape_text(&ricevuto)
                );
                (
                    415,
                    fault(
                        FaultCode::Client,
                        crate::egov::FAULT_VALIDAZIONE,
                        Some(&motivo),
                    ),
                )
            }
            HttpRefusal::PartnerBusy { partner, limit } => (
                503,
                occupato(format!(
                    "troppi scambi in corso da {partner} (al più {limit} alla volta): riprovare"
                )),
            ),
            HttpRefusal::NoRoom { bytes } => (
                503,
                occupato(format!(
                    "troppi messaggi in corso: nessuno spazio per altri {bytes} byte ora (limits.max_bytes_in_flight): riprovare"
                )),
            ),
            HttpRefusal::ShareFull { partner, used, share } => (
                503,
                occupato(format!(
                    "{partner} ha già {used} byte di messaggi in corso, la sua quota è {share} (limits.partner_bytes_in_flight): riprovare"
                )),
            ),
            HttpRefusal::PdPath => (
                404,
                fault(FaultCode::Client, "use /pdd/PD/{Servizio}/{Azione}", None),
            ),
        };
        let mut a = super::Answer::soap(status, body);
        if status == 503 {
            a.headers.push(("Retry-After".into(), "1".into()));
        }
        a
    }
}

/// A failure of the porta delegata, as the local system will see it: a Fault with
/// MessaggioDiErroreApplicativo naming the function that failed and the eccezione.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdError {
    pub funzione: Funzione,
    pub eccezione: EccezioneApplicativa,
    pub outcome: Outcome,
}

impl PdError {
    /// A processing error of `funzione` (EGOV_IT_300).
    pub fn processamento(funzione: Funzione, msg: impl Into<String>) -> PdError {
        PdError {
            funzione,
            eccezione: EccezioneApplicativa::Processamento(Codice::PROCESSAMENTO, msg.into()),
            outcome: Outcome::ErroreProcessamento,
        }
    }

    /// A busta error of `funzione` with its code.
    pub fn busta(funzione: Funzione, codice: Codice, msg: impl Into<String>) -> PdError {
        PdError {
            funzione,
            eccezione: EccezioneApplicativa::Busta(codice, msg.into()),
            outcome: Outcome::ErroreBusta,
        }
    }

    /// The note the record keeps.
    pub fn nota(&self) -> String {
        match &self.eccezione {
            EccezioneApplicativa::Busta(c, d) => format!("{c} {d}"),
            EccezioneApplicativa::Processamento(c, d) => format!("{c} {d}"),
        }
    }

    /// The Fault the local system receives.
    pub fn fault(&self, now: chrono::NaiveDateTime, porta: &str) -> String {
        risposte::fault_applicativo(now, porta, self.funzione, &self.eccezione)
    }
}

impl From<super::TransportError> for PdError {
    fn from(e: super::TransportError) -> PdError {
        use super::TransportError as T;
        let sconosciuto = matches!(e, T::Lost { .. } | T::Timeout(_));
        let mut p = PdError::processamento(
            Funzione::InoltroBuste,
            if sconosciuto {
                format!("{e}: il destinatario potrebbe averla elaborata; reinviare la stessa richiesta (un reinvio identico è risposto OK)")
            } else {
                e.to_string()
            },
        );
        if sconosciuto {
            p.outcome = Outcome::Sconosciuto;
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_outcome_and_answer() {
        let v = PaError::busta(vec![Eccezione::grave(Codice::AZIONE, "Azione")], None);
        assert_eq!(v.outcome(), Outcome::ErroreBusta);
        assert!(v.fault().is_none(), "an error busta, not a bare Fault");
        let p = PaError::processamento("Servizio", "backend down");
        assert_eq!(p.outcome(), Outcome::ErroreProcessamento);
        assert!(p.dettaglio_xml().unwrap().contains("backend down"));
        assert_eq!(
            PaError::Duplicato { primo: 1 }.eccezioni()[0].codice,
            Codice::ID_NON_VALIDO
        );
        let f = PaError::Firma(FirmaError::Firma("no key".into()));
        assert!(f
            .fault()
            .unwrap()
            .contains(crate::egov::FAULT_PROCESSAMENTO));
        assert!(PaError::Soap12.fault().unwrap().contains("VersionMismatch"));
        assert_eq!(
            eccezione_firma(&FirmaError::Intestazione("x".into())).codice,
            Codice::FIRMA
        );
        let altrui = SignerError::Altrui {
            parte: "SPC/A".into(),
            altro: "SPC/B".into(),
        };
        assert_eq!(
            eccezione_firmatario(&altrui).codice,
            Codice::MITTENTE_NON_AUTORIZZATO
        );
    }
}
