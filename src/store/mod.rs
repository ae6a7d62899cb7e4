//! State: exchanges, the duplicate filter, Identificatore counters, stored moduli.
//! One small trait; the embedded sled implementation is the default. Nothing above this module
//! knows sled.

pub mod cura;
mod sled_store;

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::egov::Eccezione;

pub use sled_store::SledStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    #[error("store: the Identificatore counter for minute {0} is exhausted")]
    Exhausted(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received on the porta applicativa.
    In,
    /// Sent by the porta delegata.
    Out,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Processed; a normal answer (possibly with INFO eccezioni).
    Ok,
    /// Refused with an error busta (validation).
    ErroreBusta,
    /// Refused with a bare SOAP Fault (no busta could be read).
    Fault,
    /// Accepted but processing failed (EGOV_IT_300).
    ErroreProcessamento,
    /// A repeated Identificatore, refused (sync) or absorbed (oneway).
    Duplicato,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ErroreBusta => "errore_busta",
            Outcome::Fault => "fault",
            Outcome::ErroreProcessamento => "errore_processamento",
            Outcome::Duplicato => "duplicato",
        }
    }
}

/// One exchange: a request and its answer, with what the gateway made of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: u64,
    pub direction: Direction,
    /// RFC 3339 times.
    pub received_at: String,
    pub answered_at: String,
    pub request_id: Option<String>,
    pub response_id: Option<String>,
    pub mittente: Option<String>,
    pub destinatario: Option<String>,
    pub servizio: Option<String>,
    pub azione: Option<String>,
    pub profilo: Option<String>,
    pub outcome: Outcome,
    pub http_status: u16,
    #[serde(default)]
    pub eccezioni: Vec<Eccezione>,
    /// A short human explanation (fault string, service result, error).
    #[serde(default)]
    pub note: Option<String>,
    /// The peer (remote address, or the partner URL for outgoing exchanges).
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(skip)]
    pub request: Vec<u8>,
    #[serde(skip)]
    pub response: Vec<u8>,
}

impl Exchange {
    /// A new exchange as first recorded: nothing known of it yet but when it arrived and
    /// which way; a Fault until it is answered otherwise.
    pub fn nuovo(seq: u64, direction: Direction, received_at: String) -> Exchange {
        Exchange {
            seq,
            direction,
            received_at,
            answered_at: String::new(),
            request_id: None,
            response_id: None,
            mittente: None,
            destinatario: None,
            servizio: None,
            azione: None,
            profilo: None,
            outcome: Outcome::Fault,
            http_status: 500,
            eccezioni: Vec::new(),
            note: None,
            peer: None,
            request: Vec::new(),
            response: Vec::new(),
        }
    }

    /// JSON with the raw request and response as text (for `pdd trace show --json` and the
    /// admin endpoint).
    pub fn to_json_full(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["request"] =
            serde_json::Value::String(String::from_utf8_lossy(&self.request).into_owned());
        v["response"] =
            serde_json::Value::String(String::from_utf8_lossy(&self.response).into_owned());
        v
    }

    /// The inverse of [`Exchange::to_json_full`].
    pub fn from_json_full(v: &serde_json::Value) -> Option<Exchange> {
        let mut e: Exchange = serde_json::from_value(v.clone()).ok()?;
        e.request = v
            .get("request")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        e.response = v
            .get("response")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .as_bytes()
            .to_vec();
        Some(e)
    }
}

/// What the duplicate filter knows of an Identificatore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DupEntry {
    /// Exchange that processed it; 0 while in flight.
    pub seq: u64,
    /// When it was first accepted (ms since the epoch), for retention.
    pub first_ms: i64,
    /// Repeats seen after the first.
    pub repeats: u32,
    /// When the busta expires (ms since the epoch): from then on a replay is refused as expired
    /// (EGOV_IT_301) before the filter is asked, so retention may forget the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scade_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: the caller owns the id until it settles or releases it.
    New,
    /// Already accepted (or in flight).
    Duplicate(DupEntry),
}

/// Where a modulo is in its life (document §4: validity, rettifica, chiusura).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatoModulo {
    /// Published and current.
    Attivo,
    /// Closed by a chiusura (tipo 02).
    Chiuso,
    /// Replaced by a rettifica.
    Rettificato,
    /// Past its validity.
    Scaduto,
}

/// A stored ClicLavoro modulo, keyed by kind and code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredModulo {
    pub kind: String,
    pub code: String,
    pub versione: String,
    pub stato: StatoModulo,
    pub received_at: String,
    pub updated_at: String,
    pub request_id: Option<String>,
    pub mittente: Option<String>,
    /// The expiry applied on receipt (yyyy-MM-dd): the modulo's own, or the maximum.
    pub scadenza: Option<String>,
    /// For a rettifica or chiusura: the code of the original communication.
    pub precedente: Option<String>,
    /// On an original: the code of its current version (the last rettifica).
    pub attuale: Option<String>,
    pub xml: String,
    /// The nodes it was forwarded to (`TIPO/NOME`), so that its rettifiche and chiusura follow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub destinazioni: Vec<String>,
    /// The node that answers for it (contacts go there): `TIPO/NOME`; none when it is ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub titolare: Option<String>,
    /// What the read API publishes of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheda: Option<crate::rete::scheda::Scheda>,
}

/// A stored Candidatura or Vacancy without its document: its state and dates (for the
/// validity sweeper), and its published view without the published fields themselves
/// (`pubblico` and `contatto` are empty; the read API reads its page's moduli whole).
#[derive(Debug, Clone, PartialEq)]
pub struct Leggero {
    pub codice: String,
    pub stato: StatoModulo,
    pub inserita: String,
    pub aggiornata: String,
    pub scadenza: Option<String>,
    /// None when this node does not publish it, or while it is not active.
    pub scheda: Option<crate::rete::scheda::Scheda>,
}

impl Leggero {
    /// None for Messaggi.
    pub fn da(m: &StoredModulo) -> Option<Leggero> {
        if m.kind == "messaggio" {
            return None;
        }
        Some(Leggero {
            codice: m.code.clone(),
            stato: m.stato,
            inserita: m.received_at.clone(),
            aggiornata: m.updated_at.clone(),
            scadenza: m.scadenza.clone(),
            // Only active moduli are published: of the others the index keeps what the sweeper
            // and the metrics need, not the search text (a CV's can be kilobytes).
            scheda: m
                .scheda
                .as_ref()
                .filter(|_| m.stato == StatoModulo::Attivo)
                .map(|s| crate::rete::scheda::Scheda {
                    pubblico: serde_json::Value::Null,
                    contatto: serde_json::Value::Null,
                    ..s.clone()
                }),
        })
    }
}

/// One write of an atomic batch: a value put, or (`valore: None`) a key removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scrittura {
    pub albero: &'static str,
    pub chiave: Vec<u8>,
    pub valore: Option<Vec<u8>>,
    /// A stored modulo's entry of the in-memory index, when the writer has it at hand (saves
    /// decoding the record again).
    pub leggero: Option<std::sync::Arc<Leggero>>,
}

impl Scrittura {
    pub fn metti<T: Serialize>(
        albero: &'static str,
        chiave: impl Into<Vec<u8>>,
        v: &T,
    ) -> Scrittura {
        Scrittura {
            albero,
            chiave: chiave.into(),
            valore: Some(serde_json::to_vec(v).unwrap_or_default()),
            leggero: None,
        }
    }
    /// A stored modulo, written to `moduli` with its index entry.
    pub fn modulo(m: &StoredModulo) -> Scrittura {
        Scrittura {
            leggero: Leggero::da(m).map(std::sync::Arc::new),
            ..Scrittura::metti("moduli", chiave_modulo(&m.kind, &m.code), m)
        }
    }
    pub fn togli(albero: &'static str, chiave: impl Into<Vec<u8>>) -> Scrittura {
        Scrittura {
            albero,
            chiave: chiave.into(),
            valore: None,
            leggero: None,
        }
    }
}

/// The trees of the ClicLavoro network's state (see [`crate::rete`]), written with
/// [`Store::scrivi`]: stored moduli, the forwarding outbox, EURES documents, API users, the
/// last-employment table of percettori, contacts delivered here; and the diagnostic messages
/// ([`crate::gateway::diagnostici`]).
pub const ALBERI: [&str; 7] = [
    "moduli",
    "outbox",
    "eures",
    "utenti",
    "rapporti",
    "contatti",
    "diagnostici",
];

/// The key of a stored modulo.
pub fn chiave_modulo(kind: &str, code: &str) -> Vec<u8> {
    format!("{kind}/{code}").into_bytes()
}

pub type FlushFuture<'a> = Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;

pub trait Store: Send + Sync + 'static {
    /// Durably reserves `block` counter values for `minute`; returns the first (≥ 1).
    fn reserve_ids(&self, minute: &str, block: u32, capacity: u32) -> Result<u32>;
    /// Claims an incoming Identificatore for processing (atomic: one claimant wins);
    /// `scade_ms`: when its busta expires (see [`DupEntry::scade_ms`]).
    fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim>;
    /// Records that the claimed id was processed by exchange `seq`.
    fn settle(&self, id: &str, seq: u64) -> Result<()>;
    /// Gives a claimed id back (processing did not happen).
    fn release(&self, id: &str) -> Result<()>;
    /// Counts a repeat of an accepted id.
    fn count_repeat(&self, id: &str) -> Result<()>;
    /// A new exchange sequence number (monotonic, never reused).
    fn next_seq(&self) -> Result<u64>;
    fn put_exchange(&self, ex: &Exchange) -> Result<()>;
    fn exchange(&self, seq: u64) -> Result<Option<Exchange>>;
    /// The exchange whose request or response carries this Identificatore.
    fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>>;
    /// The most recent exchanges, newest first, without raw messages.
    fn recent(&self, limit: usize) -> Result<Vec<Exchange>>;
    /// The exchanges received in `[dal_ms, al_ms)` (ms since the epoch; None: no bound),
    /// oldest first, without raw messages.
    fn scambi_tra(&self, dal_ms: Option<i64>, al_ms: Option<i64>) -> Result<Vec<Exchange>> {
        let mut out: Vec<Exchange> = self
            .recent(usize::MAX)?
            .into_iter()
            .filter(|e| {
                let t = chrono::DateTime::parse_from_rfc3339(&e.received_at)
                    .map(|t| t.timestamp_millis())
                    .unwrap_or(i64::MIN);
                dal_ms.is_none_or(|d| t >= d) && al_ms.is_none_or(|a| t < a)
            })
            .collect();
        out.reverse();
        Ok(out)
    }
    fn modulo(&self, kind: &str, code: &str) -> Result<Option<StoredModulo>>;
    /// Whether a modulo is stored, without reading it (large moduli are costly to read).
    fn ha_modulo(&self, kind: &str, code: &str) -> Result<bool> {
        Ok(self.modulo(kind, code)?.is_some())
    }
    /// Partners added at run time (they complete the configured registry).
    fn partners(&self) -> Result<Vec<crate::registry::Soggetto>>;
    fn put_partner(&self, s: &crate::registry::Soggetto) -> Result<()>;
    /// Removes a partner; false when there was none.
    fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool>;
    /// Applies a batch atomically across trees (all of it or none; durable at the next flush).
    fn scrivi(&self, batch: &[Scrittura]) -> Result<()>;
    fn leggi(&self, albero: &str, chiave: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Every entry whose key starts with `prefisso`, in key order.
    fn elenca(&self, albero: &str, prefisso: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Stored moduli of a kind.
    fn moduli(&self, kind: &str) -> Result<Vec<StoredModulo>> {
        let mut out = Vec::new();
        for (_, v) in self.elenca("moduli", format!("{kind}/").as_bytes())? {
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("modulo: {e}")))?,
            );
        }
        Ok(out)
    }
    /// Visits every stored Candidatura or Vacancy of a kind without its document: what the
    /// read API filters, orders and pages on, and the sweeper checks. The sled store answers
    /// from memory.
    fn per_ogni_leggero(
        &self,
        kind: &str,
        f: &mut dyn FnMut(&std::sync::Arc<Leggero>),
    ) -> Result<()> {
        for m in self.moduli(kind)? {
            if let Some(l) = Leggero::da(&m) {
                f(&std::sync::Arc::new(l));
            }
        }
        Ok(())
    }
    /// Makes every write so far durable.
    fn flush(&self) -> FlushFuture<'_>;
    /// Copies the store into a new store at `dest`, the gateway running (see [`cura`] for what
    /// the copy holds).
    fn backup(&self, dest: &Path) -> Result<cura::Manifest> {
        let _ = dest;
        Err(cura::non_supportato("backup"))
    }
    /// Entries and bytes per tree, size on disk.
    fn stats(&self) -> Result<cura::Stats> {
        Err(cura::non_supportato("stats"))
    }
    /// Reads back everything and says what is damaged.
    fn check(&self) -> Result<cura::CheckReport> {
        Err(cura::non_supportato("check"))
    }
    /// Forgets old exchanges, duplicate-filter entries and diagnostic messages (never moduli,
    /// outbox or partners).
    fn purge(&self, limits: &cura::PurgeLimits) -> Result<cura::PurgeReport> {
        let _ = limits;
        Err(cura::non_supportato("purge"))
    }
}
