//! State: one typed API over every kind of state the gateway keeps, one family of operations
//! per kind: exchanges, the duplicate filter, Identificatore counters, moduli and their
//! summaries, the outbox, EURES documents, contacts, API users, last-employment records
//! (rapporti), accredited intermediaries, diagnostics and partners.
//!
//! Keys and encodings live in the engines; nothing above this module names a tree, a key or a
//! table. Every operation is async, so that an engine doing network I/O (a database) does not
//! block the runtime; the embedded engine answers at once. Errors are a typed [`StoreError`].
//!
//! Engines: [`SledStore`], embedded, the default; [`PgStore`], PostgreSQL, which several nodes
//! share (a cluster); [`MemoryStore`], in memory, for tests (it is not durable).
//! `tests/store_contract.rs` runs one contract suite against all three.

pub mod care;
mod error;
mod exchange;
pub mod guasti;
mod memory;
mod postgres;
mod record;
mod sled_store;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::clock::Clock;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::ricerca::scegli;
pub use crate::modulo::ricerca::{Criteri, Cursore, Pagina, Scelta};
use crate::modulo::Tipo;
use crate::registry::Soggetto;

pub use error::{Result, StoreError};
pub use exchange::{Direction, Exchange, Outcome};
pub use guasti::Guasti;
pub use memory::MemoryStore;
pub use postgres::{url_senza_password, PgOptions, PgStore, MIGRAZIONI};
pub use record::{
    Claim, DupEntry, Forward, ForwardState, Record, RuoloConsole, Sommario, User, VistaSommario,
    Write,
};
// ClicLavoro's own records, which the store persists.
pub use crate::modulo::stato::{Contatto, StatoModulo, StoredModulo};
pub use sled_store::{compresso, segmento, spazio_libero, Opzioni as OpzioniSled, SledStore};

/// Held while moduli change ([`Store::lock_moduli`]); dropping it releases them.
pub struct ModuliLock {
    _locali: Vec<tokio::sync::OwnedMutexGuard<()>>,
    remoto: Option<Box<dyn Modifica>>,
}

/// What an engine shared by several processes holds for a change besides the node's own locks:
/// its locks in a transaction of the database, which can also write the change (and then
/// releases them with its commit) and tell which of the locked codes are stored (read in the
/// round trip that took the locks).
#[async_trait]
pub(crate) trait Modifica: Send + Sync {
    /// Whether a modulo of a locked code is stored; None when not read.
    fn presente(&self, kind: Tipo, code: &str) -> Option<bool>;
    /// Writes the batch in the locks' transaction — with the exchange that caused it, its
    /// ids and its settled claim, when given — and commits it, releasing the locks.
    async fn apply(&mut self, batch: Vec<Write>, scambio: Option<Scambio<'_>>) -> Result<()>;
}

/// An exchange to record with the effects it caused, and the duplicate-filter claim it
/// settles.
pub type Scambio<'a> = (&'a Exchange, Option<&'a str>);

impl ModuliLock {
    pub(crate) fn new(
        locali: Vec<tokio::sync::OwnedMutexGuard<()>>,
        remoto: Option<Box<dyn Modifica>>,
    ) -> ModuliLock {
        ModuliLock {
            _locali: locali,
            remoto,
        }
    }

    /// Whether a modulo of one of the locked codes is stored: what the engine read with the
    /// locks (no other change can alter it while they are held), else asked of `store`.
    pub async fn has_modulo(&self, store: &dyn Store, kind: Tipo, code: &str) -> Result<bool> {
        match self.remoto.as_ref().and_then(|r| r.presente(kind, code)) {
            Some(p) => Ok(p),
            None => store.has_modulo(kind, code).await,
        }
    }

    /// Writes the change: in the locks' own transaction where the engine has one (the
    /// locks are released by its commit: nothing can come between the write and the
    /// release), else by [`Store::apply`]. The node's own locks are held until the guard goes.
    pub async fn apply(&mut self, store: &dyn Store, batch: Vec<Write>) -> Result<()> {
        match self.remoto.as_mut() {
            Some(r) => r.apply(batch, None).await,
            None => store.apply(batch).await,
        }
    }

    /// Writes the change with the exchange that caused it, as one atomic and durable write
    /// ([`Store::commit_exchange_with`]): in the locks' own transaction where the engine has
    /// one.
    pub async fn commit(
        &mut self,
        store: &dyn Store,
        batch: Vec<Write>,
        ex: &Exchange,
        settle: Option<&str>,
    ) -> Result<()> {
        match self.remoto.as_mut() {
            Some(r) => r.apply(batch, Some((ex, settle))).await,
            None => store.commit_exchange_with(ex, settle, batch).await,
        }
    }
}

/// What an exchange changed besides its own record (moduli, outbox, contacts…), held under the
/// locks of the moduli it changes until it is written — with the exchange's record, as one
/// atomic write ([`Effetti::commit`]): an exchange whose record is not written leaves none of
/// its effects behind, so that the sender, told it failed, may send it again.
pub struct Effetti {
    lock: ModuliLock,
    batch: Vec<Write>,
}

impl std::fmt::Debug for Effetti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Effetti({} writes)", self.batch.len())
    }
}

impl Effetti {
    pub fn new(lock: ModuliLock, batch: Vec<Write>) -> Effetti {
        Effetti { lock, batch }
    }

    /// Forwards were queued (the outbox is to be woken once they are written).
    pub fn inoltri(&self) -> bool {
        self.batch.iter().any(|w| matches!(w, Write::Forward(_)))
    }

    /// The effects, the exchange and its settled claim, in one atomic write made durable;
    /// the locks are released after it.
    pub async fn commit(
        mut self,
        store: &dyn Store,
        ex: &Exchange,
        settle: Option<&str>,
    ) -> Result<()> {
        self.lock.commit(store, self.batch, ex, settle).await
    }

    /// The effects alone (an exchange recorded elsewhere), made durable.
    pub async fn apply(mut self, store: &dyn Store) -> Result<()> {
        self.lock.apply(store, self.batch).await?;
        store.flush().await
    }
}

/// The 64-bit key of a modulo's code (FNV-1a: stable across processes and versions, as
/// locks shared by several nodes need).
pub(crate) fn chiave_codice(codice: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in codice.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// In-process locks of moduli, by stripes of their codes' keys: taken in stripe order, so
/// two changes locking several codes cannot deadlock.
pub(crate) struct StripeModuli(Vec<Arc<tokio::sync::Mutex<()>>>);

impl Default for StripeModuli {
    fn default() -> Self {
        StripeModuli(
            (0..256)
                .map(|_| Arc::new(tokio::sync::Mutex::new(())))
                .collect(),
        )
    }
}

impl StripeModuli {
    pub(crate) async fn lock(&self, codici: &[&str]) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut strisce: Vec<usize> = codici
            .iter()
            .map(|c| (chiave_codice(c) as u64 % self.0.len() as u64) as usize)
            .collect();
        strisce.sort_unstable();
        strisce.dedup();
        let mut guardie = Vec::with_capacity(strisce.len());
        for i in strisce {
            guardie.push(self.0[i].clone().lock_owned().await);
        }
        guardie
    }
}

/// Leases kept in memory, for the engines one process holds.
#[derive(Default)]
pub(crate) struct LeaseLocali(std::sync::Mutex<std::collections::HashMap<String, (String, i64)>>);

impl LeaseLocali {
    pub(crate) fn prendi(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> bool {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(nome) {
            Some((h, scade)) if h != holder && *scade > now_ms => false,
            _ => {
                m.insert(nome.to_string(), (holder.to_string(), now_ms + ttl_ms));
                true
            }
        }
    }

    pub(crate) fn rilascia(&self, nome: &str, holder: &str) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(nome).is_some_and(|(h, _)| h == holder) {
            m.remove(nome);
        }
    }
}

/// A claim in flight for longer than this was left by a process that died while processing
/// (10 minutes: far beyond any request's time limit); [`Store::claim`] takes it over, so that
/// the sender's resend is processed instead of being told to retry until retention.
pub const ABBANDONO_MS: i64 = 10 * 60 * 1000;

/// Which Identificatore counter: one per soggetto (CodAmm), porta (CodPdD) and minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contatore<'a> {
    pub cod_amm: &'a str,
    pub cod_pdd: &'a str,
    /// `yyyy-MM-dd_HH:mm`.
    pub minuto: &'a str,
    /// The node's prefix in a cluster: each node counts on its own (its Identificatori
    /// differ by the prefix), so that every node has a minute's whole capacity.
    pub nodo: Option<&'a str>,
}

impl Contatore<'_> {
    /// The counter's name, as engines key it (`CodAmm_CodPdD_minute`, then `_node` in a
    /// cluster).
    pub fn chiave(&self) -> String {
        match self.nodo {
            None => format!("{}_{}_{}", self.cod_amm, self.cod_pdd, self.minuto),
            Some(n) => format!("{}_{}_{}_{n}", self.cod_amm, self.cod_pdd, self.minuto),
        }
    }
}

/// [`Store::pubblicati`] from the summaries: filtered and paged in memory, then the page's
/// moduli read whole.
async fn pubblicati_da_sommari<S: Store + ?Sized>(
    store: &S,
    kind: Tipo,
    criteri: &Criteri,
    pagina: &Pagina,
    misura: usize,
) -> Result<Scelta<StoredModulo>> {
    let scelta = store
        .sommari_in_pagina(
            kind,
            &|l: &dyn VistaSommario| l.stato() == StatoModulo::Attivo && l.ammesso(criteri),
            pagina,
            misura,
        )
        .await?;
    let mut moduli = Vec::with_capacity(scelta.pagina.len());
    for codice in &scelta.pagina {
        // Closed or expired since the summaries were read: not published any more.
        if let Some(m) = store.modulo(kind, codice).await? {
            if m.stato == StatoModulo::Attivo {
                moduli.push(m);
            }
        }
    }
    Ok(Scelta {
        totale: scelta.totale,
        pagina: moduli,
        successivo: scelta.successivo,
    })
}

/// Selects summaries of moduli ([`Store::sommari`]).
pub type FiltroSommari<'a> = &'a (dyn Fn(&dyn VistaSommario) -> bool + Send + Sync);

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The engine's name, for logs and `/health`.
    fn engine(&self) -> &'static str;

    /// A problem of the engine that `/health` reports (the node cannot go on as it is).
    fn avviso(&self) -> Option<String> {
        None
    }

    // --- Identificatore counters ---

    /// Durably reserves `block` values of a counter; returns the first (≥ 1). `capacity` is
    /// the largest value an Identificatore can carry.
    async fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32>;

    // --- the duplicate filter ---

    /// Claims an incoming Identificatore for processing (atomic: one claimant wins);
    /// `scade_ms`: when its busta expires (see [`DupEntry::scade_ms`]). A claim still in
    /// flight [`ABBANDONO_MS`] after it was made is taken over.
    async fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim>;
    /// Records that the claimed id was processed by exchange `seq`.
    async fn settle(&self, id: &str, seq: u64) -> Result<()>;
    /// Gives a claimed id back (processing did not happen).
    async fn release(&self, id: &str) -> Result<()>;
    /// Counts a repeat of an accepted id.
    async fn count_repeat(&self, id: &str) -> Result<()>;

    // --- exchanges ---

    /// A new sequence number (for exchanges and forwards): monotonic, never reused, also
    /// across restarts and restores.
    async fn next_seq(&self) -> Result<u64>;
    async fn put_exchange(&self, ex: &Exchange) -> Result<()>;
    /// What the gateway does before it answers: the exchange written, its duplicate-filter
    /// claim settled (`settle`), and every write so far durable. An engine may do it in one
    /// step.
    async fn commit_exchange(&self, ex: &Exchange, settle: Option<&str>) -> Result<()> {
        self.put_exchange(ex).await?;
        if let Some(id) = settle {
            self.settle(id, ex.seq).await?;
        }
        self.flush().await
    }
    /// [`Store::commit_exchange`] with the writes the exchange caused, all of them one atomic
    /// write: after a failure none of them is there. The default is not atomic (two writes);
    /// every engine of the contract overrides it.
    async fn commit_exchange_with(
        &self,
        ex: &Exchange,
        settle: Option<&str>,
        batch: Vec<Write>,
    ) -> Result<()> {
        self.apply(batch).await?;
        self.commit_exchange(ex, settle).await
    }
    /// An exchange with its raw messages.
    async fn exchange(&self, seq: u64) -> Result<Option<Exchange>>;
    /// The exchange whose request or response carries this Identificatore.
    async fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>>;
    /// The most recent exchanges, newest first, without raw messages.
    async fn recent(&self, limit: usize) -> Result<Vec<Exchange>>;
    /// The exchanges received in `[from_ms, to_ms)` (ms since the epoch; None: no bound),
    /// oldest first, without raw messages. Indexed by time: a range reads only itself.
    async fn exchanges_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Exchange>>;

    // --- moduli ---

    async fn modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>>;
    /// Whether a modulo is stored, without reading it (large moduli are costly to read).
    async fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool>;
    /// Every stored modulo of a kind, whole.
    async fn moduli(&self, kind: Tipo) -> Result<Vec<StoredModulo>>;
    /// The summaries of the Candidature or Vacancies that `filtro` selects: what the read API
    /// filters and pages on, and the validity sweeper checks, without reading documents.
    async fn sommari(&self, kind: Tipo, filtro: FiltroSommari<'_>) -> Result<Vec<Arc<Sommario>>>;
    /// The page `pagina` of the summaries `filtro` selects, in a search's order (newest update
    /// first, then by code): how many in all, the page's codes, the cursor of the next page.
    /// An engine whose index packs its summaries orders them where they lie, copying out only
    /// the page's codes.
    async fn sommari_in_pagina(
        &self,
        kind: Tipo,
        filtro: FiltroSommari<'_>,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<String>> {
        let scelta = scegli(
            self.sommari(kind, filtro).await?,
            |l| (l.aggiornata.timestamp_millis(), l.codice.as_str()),
            pagina,
            misura,
        );
        Ok(Scelta {
            totale: scelta.totale,
            pagina: scelta.pagina.iter().map(|l| l.codice.clone()).collect(),
            successivo: scelta.successivo,
        })
    }
    /// The active Candidature or Vacancies a search admits, newest update first (then by
    /// code): how many in all, and one page of them, whole, with the cursor of the next page
    /// when more follow. The embedded engines filter their in-memory summaries; a database
    /// answers in SQL, so that every node of a cluster answers the same.
    async fn pubblicati(
        &self,
        kind: Tipo,
        criteri: &Criteri,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<StoredModulo>> {
        pubblicati_da_sommari(self, kind, criteri, pagina, misura).await
    }

    // --- the outbox, EURES, contacts, users, rapporti, intermediaries, diagnostics ---

    /// Every forward in the outbox, in order. An entry that does not decode is logged and left
    /// out, so that one bad record does not stop every delivery.
    async fn outbox(&self) -> Result<Vec<Forward>>;
    /// Every document kept for EURES, by kind and code.
    async fn eures(&self) -> Result<Vec<Forward>>;
    async fn contatti(&self) -> Result<Vec<Contatto>>;
    async fn users(&self) -> Result<Vec<User>>;
    async fn user(&self, nome: &str) -> Result<Option<User>>;
    /// A worker's last employment record, by codice fiscale.
    async fn rapporto(&self, cf: &str) -> Result<Option<Rapporto>>;
    /// The register of accredited intermediaries, by codice fiscale.
    async fn intermediari(&self) -> Result<Vec<Intermediario>>;
    async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>>;
    /// Whether the register holds anyone (its rules apply only then).
    async fn ha_intermediari(&self) -> Result<bool> {
        Ok(!self.intermediari().await?.is_empty())
    }
    /// The diagnostics of `[from_ms, to_ms)`, oldest first (indexed by time). Unreadable
    /// entries are left out.
    async fn diagnostici(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Diagnostico>>;

    // --- partners added at run time (they complete the configured registry) ---

    async fn partners(&self) -> Result<Vec<Soggetto>>;
    async fn put_partner(&self, s: &Soggetto) -> Result<()>;
    /// Removes a partner; false when there was none.
    async fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool>;

    // --- moduli changing: one change of a modulo at a time ---

    /// Serialises changes of the moduli with these codes among all who share the store (the
    /// tasks of a node; the nodes of a cluster): a read-decide-write of a modulo holds it
    /// from its reads to its write. Released when the guard is dropped. Changes of other
    /// moduli go on meanwhile.
    async fn lock_moduli(&self, codici: &[&str]) -> Result<ModuliLock>;

    // --- leases: what the nodes sharing a store run one at a time ---

    /// Takes or renews the lease `nome` for `holder` until `now_ms + ttl_ms`: true when
    /// `holder` has it now (it was free, had expired, or was already its own). A destination's
    /// queue in the outbox, the validity sweeper and retention run under a lease, so that
    /// one node at a time does them; when that node dies its lease expires and another takes
    /// over. (One process holds an embedded store: there the lease is in memory.)
    async fn lease(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool>;
    /// Gives a lease back, if `holder` has it.
    async fn release_lease(&self, nome: &str, holder: &str) -> Result<()>;

    // --- writing ---

    /// Applies a batch atomically (all of it or none; durable at the next flush).
    async fn apply(&self, batch: Vec<Write>) -> Result<()>;
    /// Makes every write so far durable.
    async fn flush(&self) -> Result<()>;
    /// Makes everything durable in the engine's own files, as the process stops (the sled
    /// engine's checkpoint, which empties its journal). [`Store::flush`] by default.
    async fn close(&self) -> Result<()> {
        self.flush().await
    }

    // --- moving a store to another engine ---

    /// Every record, kind by kind, handed to `sink` one at a time (`pdd store copy`); `sink`
    /// returns false to stop. Meant for a store no gateway is writing.
    async fn export(&self, sink: &(dyn Fn(Record) -> bool + Send + Sync)) -> Result<()>;
    /// Writes records exported from another store, keeping their keys and sequence numbers
    /// (and moving this store's sequence past them).
    async fn import(&self, records: Vec<Record>) -> Result<()> {
        let _ = records;
        Err(StoreError::Unsupported("import into this engine"))
    }

    // --- care ---

    /// Reads back what a restart depends on and says what the store holds (at start); an
    /// error names what is damaged.
    async fn summary(&self) -> Result<String>;
    /// Copies the store into a new store at `dest`, the gateway running (see [`care`] for
    /// what the copy holds).
    async fn backup(&self, dest: &Path, clock: &dyn Clock) -> Result<care::Manifest>;
    /// Entries and bytes per kind of state, size on disk.
    async fn stats(&self) -> Result<care::Stats>;
    /// Reads back everything and says what is damaged.
    async fn check(&self) -> Result<care::CheckReport>;
    /// Forgets old exchanges, duplicate-filter entries and diagnostics (never moduli, the
    /// outbox or partners).
    async fn purge(&self, limits: &care::PurgeLimits) -> Result<care::PurgeReport>;
}

/// The export of the records every engine lists through the contract itself: exchanges (with
/// their raw messages), moduli, forwards, EURES documents, contacts, users, diagnostics,
/// partners and intermediaries. Engines add their counters, duplicate-filter entries and rapporti.
pub(crate) async fn esporta_comuni(
    s: &dyn Store,
    sink: &(dyn Fn(Record) -> bool + Send + Sync),
) -> Result<bool> {
    for e in s.exchanges_between(None, None).await? {
        if let Some(e) = s.exchange(e.seq).await? {
            if !sink(Record::Exchange(e)) {
                return Ok(false);
            }
        }
    }
    for t in [Tipo::Candidatura, Tipo::Vacancy, Tipo::Messaggio] {
        for m in s.moduli(t).await? {
            if !sink(Record::Modulo(m)) {
                return Ok(false);
            }
        }
    }
    let mut tutti: Vec<Record> = Vec::new();
    tutti.extend(s.outbox().await?.into_iter().map(Record::Forward));
    tutti.extend(s.eures().await?.into_iter().map(Record::Eures));
    tutti.extend(s.contatti().await?.into_iter().map(Record::Contatto));
    tutti.extend(s.users().await?.into_iter().map(Record::User));
    tutti.extend(
        s.diagnostici(None, None)
            .await?
            .into_iter()
            .map(Record::Diagnostico),
    );
    tutti.extend(s.partners().await?.into_iter().map(Record::Partner));
    tutti.extend(
        s.intermediari()
            .await?
            .into_iter()
            .map(Record::Intermediario),
    );
    for r in tutti {
        if !sink(r) {
            return Ok(false);
        }
    }
    Ok(true)
}
