//! The records the store keeps besides exchanges: the duplicate filter's entries, the summaries
//! of stored moduli, the outbox's forwards, API users; and the typed writes of an atomic batch.
//! Stored moduli and contacts are ClicLavoro's records ([`crate::modulo::stato`]).

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::clock::ora;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::ricerca::{Criteri, Ricercabile};
use crate::modulo::stato::{Contatto, StatoModulo, StoredModulo};
use crate::modulo::Tipo;
use crate::store::Exchange;

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

/// A stored Candidatura or Vacancy without its document: its state and dates (for the
/// validity sweeper), and of its published view what a search filters on (the read API reads
/// its page's moduli whole).
/// Serialisable for engines that keep it beside the modulo (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sommario {
    pub codice: String,
    pub stato: StatoModulo,
    #[serde(with = "ora")]
    pub inserita: DateTime<FixedOffset>,
    #[serde(with = "ora")]
    pub aggiornata: DateTime<FixedOffset>,
    pub scadenza: Option<NaiveDate>,
    /// What a search filters on; None when this node does not publish it, or while it is not
    /// active.
    pub scheda: Option<Ricercabile>,
}

impl Sommario {
    /// None for Messaggi (they have no summary).
    pub fn di(m: &StoredModulo) -> Option<Sommario> {
        if m.kind == Tipo::Messaggio {
            return None;
        }
        Some(Sommario {
            codice: m.code.clone(),
            stato: m.stato,
            inserita: m.received_at,
            aggiornata: m.updated_at,
            scadenza: m.scadenza,
            // Only active moduli are published: of the others the summary keeps what the
            // sweeper and the metrics need, not the search text (a CV's can be kilobytes).
            scheda: m
                .scheda
                .as_ref()
                .filter(|_| m.stato == StatoModulo::Attivo)
                .map(Ricercabile::from),
        })
    }
}

/// What a filter of summaries sees ([`crate::store::Store::sommari`]): a [`Sommario`], or the
/// packed form an engine's index keeps of it, read in place.
pub trait VistaSommario {
    fn codice(&self) -> &str;
    fn stato(&self) -> StatoModulo;
    fn aggiornata(&self) -> DateTime<FixedOffset>;
    /// [`VistaSommario::aggiornata`] in ms since the epoch, what a search orders by.
    fn aggiornata_ms(&self) -> i64 {
        self.aggiornata().timestamp_millis()
    }
    fn scadenza(&self) -> Option<NaiveDate>;
    /// Published (it keeps what a search filters on) and admitted by the search `c`.
    fn ammesso(&self, c: &Criteri) -> bool;
}

impl VistaSommario for Sommario {
    fn codice(&self) -> &str {
        &self.codice
    }
    fn stato(&self) -> StatoModulo {
        self.stato
    }
    fn aggiornata(&self) -> DateTime<FixedOffset> {
        self.aggiornata
    }
    fn scadenza(&self) -> Option<NaiveDate> {
        self.scadenza
    }
    fn ammesso(&self, c: &Criteri) -> bool {
        self.scheda
            .as_ref()
            .is_some_and(|s| c.ammette(s, self.aggiornata.date_naive()))
    }
}

/// A forward waiting in the NCN's outbox (or a document kept for EURES).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    /// Its place in the outbox (from [`crate::store::Store::next_seq`]): per receiving node,
    /// forwards go in this order.
    pub seq: u64,
    #[serde(with = "ora")]
    pub creato: DateTime<FixedOffset>,
    /// `TIPO/NOME` of the receiving node, or `EURES`.
    pub destinatario: String,
    pub servizio: String,
    pub azione: String,
    /// The Identificatore every attempt uses (the receiver's duplicate filter makes a
    /// redelivery harmless); empty for EURES.
    pub id: String,
    /// Time of the busta.
    #[serde(with = "ora")]
    pub ora: DateTime<FixedOffset>,
    /// The request element (`invioCandidatura`…), or the EURES document.
    pub corpo: String,
    pub kind: Tipo,
    pub codice: String,
    /// A forward of a new modulo (not of its rettifica or chiusura): dropped if the modulo
    /// expires before it is delivered.
    #[serde(default)]
    pub invio: bool,
    pub tentativi: u32,
    /// When the next attempt is due (ms since the epoch).
    pub prossimo_ms: i64,
    pub stato: ForwardState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errore: Option<String>,
    /// The Identificatore of the request that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causa: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardState {
    /// Waiting for (another) attempt.
    #[serde(rename = "in_attesa")]
    Pending,
    /// The receiver refused it (a business KO): retrying would give the same answer. Kept for
    /// the operator (`pdd outbox list`, `pdd outbox retry`).
    #[serde(rename = "respinto")]
    Refused,
}

/// A user (`pdd users add`): of the read API, with a token of which only a hash is kept; or
/// of the operator console (`--ruolo`), with a password of which only a salted, slow hash is
/// kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub nome: String,
    /// SHA-256 of the token, hex; empty for a console user (no token).
    pub sha256: String,
    pub creato: String,
    /// The console role; None for a user of the read API only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ruolo: Option<RuoloConsole>,
    /// The console password's hash (`pbkdf2-sha256$ITERATIONS$SALT$HASH`, hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// What a console user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuoloConsole {
    /// Reads every page and acts: retries outbox entries, adds and removes partners.
    Operatore,
    /// Reads every page; acts on nothing.
    Lettore,
}

impl RuoloConsole {
    pub fn as_str(self) -> &'static str {
        match self {
            RuoloConsole::Operatore => "operatore",
            RuoloConsole::Lettore => "lettore",
        }
    }

    pub fn parse(s: &str) -> Option<RuoloConsole> {
        match s {
            "operatore" => Some(RuoloConsole::Operatore),
            "lettore" => Some(RuoloConsole::Lettore),
            _ => None,
        }
    }
}

/// One write of an atomic batch ([`crate::store::Store::apply`]): all of a batch happens, or
/// none of it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "a batch lives for one write, and most of its writes are moduli"
)]
pub enum Write {
    /// A modulo stored (new, or its new state), with its summary.
    Modulo(StoredModulo),
    /// A forward queued in the outbox, or its new state.
    Forward(Forward),
    /// A forward done with (delivered or dropped): out of the outbox.
    ForwardDone(u64),
    /// A document kept for `pdd eures export`.
    Eures(Forward),
    Contatto(Contatto),
    User(User),
    RemoveUser(String),
    /// A worker's last employment record (by codice fiscale).
    Rapporto(String, Rapporto),
    Diagnostico(Diagnostico),
    /// An accredited intermediary (by codice fiscale), new or replaced.
    Intermediario(Intermediario),
    /// An intermediary out of the register (by codice fiscale).
    RemoveIntermediario(String),
}

/// One record of a store, whatever its kind: what `pdd store copy` moves from one engine to
/// another ([`crate::store::Store::export`], [`crate::store::Store::import`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(
    clippy::large_enum_variant,
    reason = "records pass one at a time, most of them exchanges and moduli"
)]
pub enum Record {
    /// An Identificatore counter (its engine key) and the numbers it has used.
    Counter(String, u64),
    Dup(String, DupEntry),
    /// An exchange with its raw messages.
    Exchange(Exchange),
    Modulo(StoredModulo),
    Forward(Forward),
    Eures(Forward),
    Contatto(Contatto),
    User(User),
    Rapporto(String, Rapporto),
    Diagnostico(Diagnostico),
    Partner(crate::registry::Soggetto),
    Intermediario(Intermediario),
}

impl Record {
    /// The kind, as `pdd store copy` counts them.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Counter(..) => "id_counters",
            Record::Dup(..) => "dup",
            Record::Exchange(_) => "exchanges",
            Record::Modulo(_) => "moduli",
            Record::Forward(_) => "outbox",
            Record::Eures(_) => "eures",
            Record::Contatto(_) => "contatti",
            Record::User(_) => "utenti",
            Record::Rapporto(..) => "rapporti",
            Record::Diagnostico(_) => "diagnostici",
            Record::Partner(_) => "partners",
            Record::Intermediario(_) => "intermediari",
        }
    }
}
