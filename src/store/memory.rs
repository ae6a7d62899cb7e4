//! An engine in memory: every operation of the [`Store`] contract, nothing durable. It proves
//! that the contract fits an engine other than sled, and serves tests that need a store and
//! no disk. A gateway must not run on it (an answered exchange would not survive a restart).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::care::{CheckReport, Manifest, PurgeLimits, PurgeReport, Stats, TreeStats};
use super::{
    Claim, Contatore, Contatto, DupEntry, Exchange, FiltroSommari, Forward, Result, Sommario,
    Store, StoreError, StoredModulo, User, Write,
};
use crate::clock::Clock;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::Tipo;
use crate::registry::Soggetto;

#[derive(Default)]
struct Stato {
    seq: u64,
    counters: HashMap<String, u32>,
    dup: HashMap<String, DupEntry>,
    exchanges: BTreeMap<u64, Exchange>,
    ids: HashMap<String, u64>,
    /// (received ms, seq): the time index.
    received: BTreeMap<(i64, u64), ()>,
    moduli: BTreeMap<(Tipo, String), StoredModulo>,
    sommari: HashMap<Tipo, BTreeMap<String, Arc<Sommario>>>,
    outbox: BTreeMap<u64, Forward>,
    eures: BTreeMap<(Tipo, String, u64), Forward>,
    contatti: BTreeMap<String, Contatto>,
    users: BTreeMap<String, User>,
    rapporti: HashMap<String, Rapporto>,
    intermediari: BTreeMap<String, Intermediario>,
    /// (ms, n): n keeps apart those of the same millisecond.
    diagnostici: BTreeMap<(i64, u64), Diagnostico>,
    partners: BTreeMap<(String, String), Soggetto>,
}

/// The in-memory engine.
#[derive(Default)]
pub struct MemoryStore {
    s: Mutex<Stato>,
    leases: super::LeaseLocali,
    stripes: super::StripeModuli,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn stato(&self) -> MutexGuard<'_, Stato> {
        self.s.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn senza_raw(e: &Exchange) -> Exchange {
    Exchange {
        request: Vec::new(),
        response: Vec::new(),
        ..e.clone()
    }
}

impl Stato {
    fn metti_exchange(&mut self, ex: &Exchange) {
        for id in [&ex.request_id, &ex.response_id].into_iter().flatten() {
            self.ids.entry(id.clone()).or_insert(ex.seq);
        }
        if let Some(old) = self.exchanges.insert(ex.seq, ex.clone()) {
            self.received.remove(&(old.received_ms(), old.seq));
        }
        self.received.insert((ex.received_ms(), ex.seq), ());
    }

    fn salda(&mut self, id: &str, seq: u64) {
        let d = self.dup.entry(id.to_string()).or_insert(DupEntry {
            seq: 0,
            first_ms: 0,
            repeats: 0,
            scade_ms: None,
        });
        d.seq = seq;
    }

    fn scrivi(&mut self, w: Write) {
        let s = self;
        match w {
            Write::Modulo(m) => s.metti_modulo(m),
            Write::Forward(f) => {
                s.outbox.insert(f.seq, f);
            }
            Write::ForwardDone(seq) => {
                s.outbox.remove(&seq);
            }
            Write::Eures(f) => {
                s.eures.insert((f.kind, f.codice.clone(), f.seq), f);
            }
            Write::Contatto(c) => {
                s.contatti.insert(c.codice.clone(), c);
            }
            Write::User(u) => {
                s.users.insert(u.nome.clone(), u);
            }
            Write::RemoveUser(nome) => {
                s.users.remove(&nome);
            }
            Write::Rapporto(cf, r) => {
                s.rapporti.insert(cf, r);
            }
            Write::Intermediario(i) => {
                s.intermediari.insert(i.codice_fiscale.clone(), i);
            }
            Write::RemoveIntermediario(cf) => {
                s.intermediari.remove(&cf);
            }
            Write::Diagnostico(d) => {
                let t = d.ora.timestamp_millis();
                let n = s.diagnostici.range((t, 0)..(t + 1, 0)).count() as u64;
                s.diagnostici.insert((t, n), d);
            }
        }
    }

    fn metti_modulo(&mut self, m: StoredModulo) {
        let sommari = self.sommari.entry(m.kind).or_default();
        match Sommario::di(&m) {
            Some(s) => {
                sommari.insert(m.code.clone(), Arc::new(s));
            }
            None => {
                sommari.remove(&m.code);
            }
        }
        self.moduli.insert((m.kind, m.code.clone()), m);
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn engine(&self) -> &'static str {
        "memory"
    }

    async fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32> {
        let key = c.chiave();
        let mut s = self.stato();
        let used = s.counters.entry(key.clone()).or_insert(0);
        if *used >= capacity {
            return Err(StoreError::Exhausted(key));
        }
        let first = *used + 1;
        *used = used.saturating_add(block).min(capacity);
        Ok(first)
    }

    async fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim> {
        let mut s = self.stato();
        if let Some(d) = s.dup.get(id) {
            // Left in flight by a process that died: taken over.
            if !(d.seq == 0 && d.first_ms < now_ms - super::ABBANDONO_MS) {
                return Ok(Claim::Duplicate(d.clone()));
            }
        }
        s.dup.insert(
            id.to_string(),
            DupEntry {
                seq: 0,
                first_ms: now_ms,
                repeats: 0,
                scade_ms,
            },
        );
        Ok(Claim::New)
    }

    async fn settle(&self, id: &str, seq: u64) -> Result<()> {
        self.stato().salda(id, seq);
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<()> {
        self.stato().dup.remove(id);
        Ok(())
    }

    async fn count_repeat(&self, id: &str) -> Result<()> {
        if let Some(d) = self.stato().dup.get_mut(id) {
            d.repeats = d.repeats.saturating_add(1);
        }
        Ok(())
    }

    async fn next_seq(&self) -> Result<u64> {
        let mut s = self.stato();
        s.seq += 1;
        Ok(s.seq)
    }

    async fn put_exchange(&self, ex: &Exchange) -> Result<()> {
        self.stato().metti_exchange(ex);
        Ok(())
    }

    async fn commit_exchange_with(
        &self,
        ex: &Exchange,
        settle: Option<&str>,
        batch: Vec<Write>,
    ) -> Result<()> {
        // One lock: the exchange and its effects are seen together, or not at all.
        let mut s = self.stato();
        for w in batch {
            s.scrivi(w);
        }
        s.metti_exchange(ex);
        if let Some(id) = settle {
            s.salda(id, ex.seq);
        }
        Ok(())
    }

    async fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        Ok(self.stato().exchanges.get(&seq).cloned())
    }

    async fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>> {
        let s = self.stato();
        Ok(s.ids.get(id).and_then(|q| s.exchanges.get(q)).cloned())
    }

    async fn recent(&self, limit: usize) -> Result<Vec<Exchange>> {
        let s = self.stato();
        Ok(s.exchanges
            .values()
            .rev()
            .take(limit)
            .map(senza_raw)
            .collect())
    }

    async fn exchanges_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Exchange>> {
        let s = self.stato();
        let da = (from_ms.unwrap_or(i64::MIN), 0);
        Ok(s.received
            .range(da..)
            .take_while(|((t, _), _)| to_ms.is_none_or(|to| *t < to))
            .filter_map(|((_, seq), _)| s.exchanges.get(seq).map(senza_raw))
            .collect())
    }

    async fn modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>> {
        Ok(self.stato().moduli.get(&(kind, code.to_string())).cloned())
    }

    async fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool> {
        Ok(self.stato().moduli.contains_key(&(kind, code.to_string())))
    }

    async fn moduli(&self, kind: Tipo) -> Result<Vec<StoredModulo>> {
        let s = self.stato();
        Ok(s.moduli
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|(_, m)| m.clone())
            .collect())
    }

    async fn sommari(&self, kind: Tipo, filtro: FiltroSommari<'_>) -> Result<Vec<Arc<Sommario>>> {
        let s = self.stato();
        Ok(s.sommari
            .get(&kind)
            .into_iter()
            .flat_map(|t| t.values())
            .filter(|x| filtro(&***x))
            .cloned()
            .collect())
    }

    async fn outbox(&self) -> Result<Vec<Forward>> {
        Ok(self.stato().outbox.values().cloned().collect())
    }

    async fn eures(&self) -> Result<Vec<Forward>> {
        Ok(self.stato().eures.values().cloned().collect())
    }

    async fn contatti(&self) -> Result<Vec<Contatto>> {
        Ok(self.stato().contatti.values().cloned().collect())
    }

    async fn users(&self) -> Result<Vec<User>> {
        Ok(self.stato().users.values().cloned().collect())
    }

    async fn user(&self, nome: &str) -> Result<Option<User>> {
        Ok(self.stato().users.get(nome).cloned())
    }

    async fn rapporto(&self, cf: &str) -> Result<Option<Rapporto>> {
        Ok(self.stato().rapporti.get(cf).cloned())
    }

    async fn intermediari(&self) -> Result<Vec<Intermediario>> {
        Ok(self.stato().intermediari.values().cloned().collect())
    }

    async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>> {
        Ok(self.stato().intermediari.get(cf).cloned())
    }

    async fn ha_intermediari(&self) -> Result<bool> {
        Ok(!self.stato().intermediari.is_empty())
    }

    async fn diagnostici(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Diagnostico>> {
        let s = self.stato();
        Ok(s.diagnostici
            .range((from_ms.unwrap_or(i64::MIN), 0)..)
            .take_while(|((t, _), _)| to_ms.is_none_or(|to| *t < to))
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn partners(&self) -> Result<Vec<Soggetto>> {
        Ok(self.stato().partners.values().cloned().collect())
    }

    async fn put_partner(&self, p: &Soggetto) -> Result<()> {
        self.stato()
            .partners
            .insert((p.tipo.clone(), p.nome.clone()), p.clone());
        Ok(())
    }

    async fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool> {
        Ok(self
            .stato()
            .partners
            .remove(&(tipo.to_string(), nome.to_string()))
            .is_some())
    }

    async fn lock_moduli(&self, codici: &[&str]) -> Result<super::ModuliLock> {
        Ok(super::ModuliLock::new(
            self.stripes.lock(codici).await,
            None,
        ))
    }

    async fn lease(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        Ok(self.leases.prendi(nome, holder, now_ms, ttl_ms))
    }

    async fn release_lease(&self, nome: &str, holder: &str) -> Result<()> {
        self.leases.rilascia(nome, holder);
        Ok(())
    }

    async fn apply(&self, batch: Vec<Write>) -> Result<()> {
        // One lock for the whole batch: all of it is seen, or none.
        let mut s = self.stato();
        for w in batch {
            s.scrivi(w);
        }
        Ok(())
    }

    async fn export(&self, sink: &(dyn Fn(super::Record) -> bool + Send + Sync)) -> Result<()> {
        if !super::esporta_comuni(self, sink).await? {
            return Ok(());
        }
        let (counters, dup, rapporti) = {
            let s = self.stato();
            (s.counters.clone(), s.dup.clone(), s.rapporti.clone())
        };
        let mut tutti: Vec<super::Record> = Vec::new();
        tutti.extend(
            counters
                .into_iter()
                .map(|(k, v)| super::Record::Counter(k, u64::from(v))),
        );
        tutti.extend(dup.into_iter().map(|(k, d)| super::Record::Dup(k, d)));
        tutti.extend(
            rapporti
                .into_iter()
                .map(|(k, r)| super::Record::Rapporto(k, r)),
        );
        for r in tutti {
            if !sink(r) {
                break;
            }
        }
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        // Nothing is durable here; there is nothing to wait for either.
        Ok(())
    }

    async fn summary(&self) -> Result<String> {
        let s = self.stato();
        Ok(format!(
            "{} exchanges, {} ids in the duplicate filter, {} moduli, {} forwards in the outbox (in memory: nothing survives a restart)",
            s.exchanges.len(),
            s.dup.len(),
            s.moduli.len(),
            s.outbox.len()
        ))
    }

    async fn backup(&self, _dest: &Path, _clock: &dyn Clock) -> Result<Manifest> {
        Err(StoreError::Unsupported("backup"))
    }

    async fn stats(&self) -> Result<Stats> {
        let s = self.stato();
        let voce = |name: &str, entries: usize| TreeStats {
            name: name.to_string(),
            entries: entries as u64,
            ..Default::default()
        };
        Ok(Stats {
            path: "(memory)".into(),
            trees: vec![
                voce("exchanges", s.exchanges.len()),
                voce("dup", s.dup.len()),
                voce("moduli", s.moduli.len()),
                voce("outbox", s.outbox.len()),
                voce("diagnostici", s.diagnostici.len()),
            ],
            size_on_disk: 0,
            bytes_in_directory: 0,
            ..Default::default()
        })
    }

    async fn check(&self) -> Result<CheckReport> {
        // Records in memory are values, not bytes: nothing can fail to decode. What can be
        // inconsistent is the indexes, and those are checked.
        let s = self.stato();
        let mut r = CheckReport::default();
        r.conta("exchanges", s.exchanges.len() as u64);
        for (id, seq) in &s.ids {
            if !s.exchanges.contains_key(seq) {
                r.problema(format!(
                    "ids: {id} points to exchange {seq}, which is missing"
                ));
            }
        }
        for ((kind, code), m) in &s.moduli {
            if m.kind != *kind || m.code != *code {
                r.problema(format!(
                    "modulo {}/{code}: its record says otherwise",
                    kind.as_str()
                ));
            }
        }
        Ok(r)
    }

    async fn purge(&self, l: &PurgeLimits) -> Result<PurgeReport> {
        let mut s = self.stato();
        let mut r = PurgeReport::default();
        if let Some(prima) = l.exchanges_before_ms {
            // Oldest first, up to the first one inside the window (as sled does).
            let vecchi: Vec<u64> = s
                .exchanges
                .values()
                .take_while(|e| e.received_ms() < prima)
                .map(|e| e.seq)
                .collect();
            for seq in vecchi {
                if let Some(e) = s.exchanges.remove(&seq) {
                    s.received.remove(&(e.received_ms(), seq));
                    for id in [&e.request_id, &e.response_id].into_iter().flatten() {
                        if s.ids.get(id) == Some(&seq) {
                            s.ids.remove(id);
                            r.ids += 1;
                        }
                    }
                    r.exchanges += 1;
                }
            }
            let prima_diag: Vec<(i64, u64)> =
                s.diagnostici.range(..(prima, 0)).map(|(k, _)| *k).collect();
            for k in prima_diag {
                s.diagnostici.remove(&k);
                r.diagnostici += 1;
            }
        }
        if let Some(prima) = l.dup_before_ms {
            let before = s.dup.len();
            s.dup.retain(|_, d| {
                !(d.seq != 0
                    && d.first_ms < prima
                    && d.scade_ms.is_none_or(|x| x < l.expired_before_ms))
            });
            r.dup = (before - s.dup.len()) as u64;
        }
        Ok(r)
    }
}
