//! An engine that fails on request: it wraps another and makes chosen write or flush calls
//! return an I/O error (a full disk) before they reach it. For tests of what the gateway does
//! when its store fails part-way through an exchange.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{
    care, Claim, Contatore, Contatto, Criteri, Exchange, FiltroSommari, Forward, ModuliLock,
    Pagina, Record, Result, Scelta, Sommario, Store, StoreError, StoredModulo, User, Write,
};
use crate::clock::Clock;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::Tipo;
use crate::registry::Soggetto;

/// The engine, and which of its calls fail.
pub struct Guasti {
    dentro: Arc<dyn Store>,
    /// Write and flush calls made so far.
    chiamate: AtomicUsize,
    /// The call (by its number from 0) that fails, and those after it while `persistente`.
    da: AtomicUsize,
    persistente: AtomicBool,
    /// The calls seen, by name, in order (what a test iterates over).
    visti: Mutex<Vec<&'static str>>,
    /// A call, by name, that waits before it reaches the engine, and for how long.
    pausa: Mutex<Option<(&'static str, std::time::Duration)>>,
    /// Calls waiting in that pause now.
    in_pausa: AtomicUsize,
}

impl Guasti {
    pub fn new(dentro: Arc<dyn Store>) -> Guasti {
        Guasti {
            dentro,
            chiamate: AtomicUsize::new(0),
            da: AtomicUsize::new(usize::MAX),
            persistente: AtomicBool::new(false),
            visti: Mutex::new(Vec::new()),
            pausa: Mutex::new(None),
            in_pausa: AtomicUsize::new(0),
        }
    }

    /// The next call named `nome` waits `per` (an await: where a task cut short stops) before
    /// it reaches the engine.
    pub fn sospendi(&self, nome: &'static str, per: std::time::Duration) {
        *self.pausa.lock().unwrap_or_else(|e| e.into_inner()) = Some((nome, per));
    }

    /// How many calls are waiting in the pause of [`Guasti::sospendi`] now.
    pub fn in_pausa(&self) -> usize {
        self.in_pausa.load(Ordering::SeqCst)
    }

    async fn attendi(&self, nome: &'static str) {
        let per = {
            let mut p = self.pausa.lock().unwrap_or_else(|e| e.into_inner());
            match *p {
                Some((n, per)) if n == nome => {
                    *p = None;
                    per
                }
                _ => return,
            }
        };
        self.in_pausa.fetch_add(1, Ordering::SeqCst);
        // Counted out even when the waiting future is dropped.
        struct Uscita<'a>(&'a AtomicUsize);
        impl Drop for Uscita<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _uscita = Uscita(&self.in_pausa);
        tokio::time::sleep(per).await;
    }

    /// The `n`-th write or flush from now (0: the next) fails; with `persistente`, every one
    /// after it too, until [`Guasti::ripara`].
    pub fn fallisci(&self, n: usize, persistente: bool) {
        let ora = self.chiamate.load(Ordering::SeqCst);
        self.persistente.store(persistente, Ordering::SeqCst);
        self.da.store(ora + n, Ordering::SeqCst);
    }

    /// No call fails any more.
    pub fn ripara(&self) {
        self.da.store(usize::MAX, Ordering::SeqCst);
    }

    /// The write and flush calls made so far, by name.
    pub fn visti(&self) -> Vec<&'static str> {
        self.visti.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn passo(&self, nome: &'static str) -> Result<()> {
        let n = self.chiamate.fetch_add(1, Ordering::SeqCst);
        self.visti
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(nome);
        let da = self.da.load(Ordering::SeqCst);
        if n == da || (n > da && self.persistente.load(Ordering::SeqCst)) {
            return Err(StoreError::io(
                "injected fault",
                std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Guasti {
    fn engine(&self) -> &'static str {
        self.dentro.engine()
    }
    fn avviso(&self) -> Option<String> {
        self.dentro.avviso()
    }
    async fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32> {
        self.passo("reserve_ids")?;
        self.dentro.reserve_ids(c, block, capacity).await
    }
    async fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim> {
        self.passo("claim")?;
        self.dentro.claim(id, now_ms, scade_ms).await
    }
    async fn settle(&self, id: &str, seq: u64) -> Result<()> {
        self.passo("settle")?;
        self.dentro.settle(id, seq).await
    }
    async fn release(&self, id: &str) -> Result<()> {
        self.dentro.release(id).await
    }
    async fn count_repeat(&self, id: &str) -> Result<()> {
        self.passo("count_repeat")?;
        self.dentro.count_repeat(id).await
    }
    async fn next_seq(&self) -> Result<u64> {
        self.passo("next_seq")?;
        self.dentro.next_seq().await
    }
    async fn put_exchange(&self, ex: &Exchange) -> Result<()> {
        self.passo("put_exchange")?;
        self.dentro.put_exchange(ex).await
    }
    async fn commit_exchange(&self, ex: &Exchange, settle: Option<&str>) -> Result<()> {
        self.passo("commit_exchange")?;
        self.attendi("commit_exchange").await;
        self.dentro.commit_exchange(ex, settle).await
    }
    async fn commit_exchange_with(
        &self,
        ex: &Exchange,
        settle: Option<&str>,
        batch: Vec<Write>,
    ) -> Result<()> {
        self.passo("commit_exchange_with")?;
        self.attendi("commit_exchange_with").await;
        self.dentro.commit_exchange_with(ex, settle, batch).await
    }
    async fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        self.dentro.exchange(seq).await
    }
    async fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>> {
        self.dentro.exchange_by_id(id).await
    }
    async fn recent(&self, limit: usize) -> Result<Vec<Exchange>> {
        self.dentro.recent(limit).await
    }
    async fn exchanges_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Exchange>> {
        self.dentro.exchanges_between(from_ms, to_ms).await
    }
    async fn modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>> {
        self.dentro.modulo(kind, code).await
    }
    async fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool> {
        self.dentro.has_modulo(kind, code).await
    }
    async fn moduli(&self, kind: Tipo) -> Result<Vec<StoredModulo>> {
        self.dentro.moduli(kind).await
    }
    async fn sommari(&self, kind: Tipo, filtro: FiltroSommari<'_>) -> Result<Vec<Arc<Sommario>>> {
        self.dentro.sommari(kind, filtro).await
    }
    async fn sommari_in_pagina(
        &self,
        kind: Tipo,
        filtro: FiltroSommari<'_>,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<String>> {
        self.dentro
            .sommari_in_pagina(kind, filtro, pagina, misura)
            .await
    }
    async fn pubblicati(
        &self,
        kind: Tipo,
        criteri: &Criteri,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<StoredModulo>> {
        self.dentro.pubblicati(kind, criteri, pagina, misura).await
    }
    async fn outbox(&self) -> Result<Vec<Forward>> {
        self.dentro.outbox().await
    }
    async fn eures(&self) -> Result<Vec<Forward>> {
        self.dentro.eures().await
    }
    async fn contatti(&self) -> Result<Vec<Contatto>> {
        self.dentro.contatti().await
    }
    async fn users(&self) -> Result<Vec<User>> {
        self.dentro.users().await
    }
    async fn user(&self, nome: &str) -> Result<Option<User>> {
        self.dentro.user(nome).await
    }
    async fn rapporto(&self, cf: &str) -> Result<Option<Rapporto>> {
        self.dentro.rapporto(cf).await
    }
    async fn intermediari(&self) -> Result<Vec<Intermediario>> {
        self.dentro.intermediari().await
    }
    async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>> {
        self.dentro.intermediario(cf).await
    }
    async fn ha_intermediari(&self) -> Result<bool> {
        self.dentro.ha_intermediari().await
    }
    async fn diagnostici(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Diagnostico>> {
        self.dentro.diagnostici(from_ms, to_ms).await
    }
    async fn partners(&self) -> Result<Vec<Soggetto>> {
        self.dentro.partners().await
    }
    async fn put_partner(&self, s: &Soggetto) -> Result<()> {
        self.passo("put_partner")?;
        self.dentro.put_partner(s).await
    }
    async fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool> {
        self.passo("remove_partner")?;
        self.dentro.remove_partner(tipo, nome).await
    }
    async fn lock_moduli(&self, codici: &[&str]) -> Result<ModuliLock> {
        self.dentro.lock_moduli(codici).await
    }
    async fn lease(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        self.dentro.lease(nome, holder, now_ms, ttl_ms).await
    }
    async fn release_lease(&self, nome: &str, holder: &str) -> Result<()> {
        self.dentro.release_lease(nome, holder).await
    }
    async fn apply(&self, batch: Vec<Write>) -> Result<()> {
        self.passo("apply")?;
        self.dentro.apply(batch).await
    }
    async fn flush(&self) -> Result<()> {
        self.passo("flush")?;
        self.dentro.flush().await
    }
    async fn close(&self) -> Result<()> {
        self.passo("close")?;
        self.dentro.close().await
    }
    async fn export(&self, sink: &(dyn Fn(Record) -> bool + Send + Sync)) -> Result<()> {
        self.dentro.export(sink).await
    }
    async fn import(&self, records: Vec<Record>) -> Result<()> {
        self.dentro.import(records).await
    }
    async fn summary(&self) -> Result<String> {
        self.dentro.summary().await
    }
    async fn backup(&self, dest: &Path, clock: &dyn Clock) -> Result<care::Manifest> {
        self.dentro.backup(dest, clock).await
    }
    async fn stats(&self) -> Result<care::Stats> {
        self.dentro.stats().await
    }
    async fn check(&self) -> Result<care::CheckReport> {
        self.dentro.check().await
    }
    async fn purge(&self, limits: &care::PurgeLimits) -> Result<care::PurgeReport> {
        self.dentro.purge(limits).await
    }
}
