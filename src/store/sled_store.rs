//! The sled implementation of [`Store`].

mod commit;
mod manutenzione;

use std::path::Path;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};

use super::{
    Claim, DupEntry, Exchange, FlushFuture, Leggero, Result, Store, StoreError, StoredModulo,
};

/// The moduli without their documents, by kind and code (see [`Store::per_ogni_leggero`]):
/// loaded at open, kept in step by every write to the `moduli` tree.
type Indice = HashMap<String, BTreeMap<String, Arc<Leggero>>>;

pub struct SledStore {
    db: sled::Db,
    exchanges: sled::Tree,
    ids: sled::Tree,
    dup: sled::Tree,
    counters: sled::Tree,
    moduli: sled::Tree,
    partners: sled::Tree,
    /// Raw messages of exchanges, in pieces (see [`PEZZO`]).
    raw: sled::Tree,
    /// Large stored moduli, in pieces (see [`MODULO_A_PEZZI`]).
    moduli_pezzi: sled::Tree,
    /// The network's trees ([`super::ALBERI`]; `moduli` is among them).
    alberi: Vec<(&'static str, sled::Tree)>,
    indice: RwLock<Indice>,
    /// What backup, check and retention need (see [`manutenzione`]).
    cura: Box<manutenzione::Cura>,
    /// Flushes shared by the writers waiting for them (declared last: dropped after the trees).
    commit: commit::GroupCommit,
}

fn be(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SledStore {
    /// Opens (or creates) the store. Claims left in flight by a previous run are dropped: those
    /// exchanges were never answered, so the sender may retry them.
    /// Opens the store, waiting up to `wait` while another holder (a gateway that is exiting,
    /// or a store just dropped in this process, whose flusher thread lets go a moment later)
    /// keeps its lock.
    pub fn open_waiting(path: &Path, wait: std::time::Duration) -> Result<SledStore> {
        SledStore::open_waiting_with(path, wait, CACHE_BYTES)
    }

    /// [`SledStore::open_waiting`] with sled's cache capped at `cache` bytes (`[store] cache_mb`).
    pub fn open_waiting_with(
        path: &Path,
        wait: std::time::Duration,
        cache: u64,
    ) -> Result<SledStore> {
        let until = std::time::Instant::now() + wait;
        loop {
            match SledStore::open_with(path, cache) {
                Err(StoreError::Backend(m))
                    if m.contains("could not acquire lock")
                        && std::time::Instant::now() < until =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => return r,
            }
        }
    }

    pub fn open(path: &Path) -> Result<SledStore> {
        SledStore::open_with(path, CACHE_BYTES)
    }

    fn open_with(path: &Path, cache: u64) -> Result<SledStore> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            // sled caches 1 GiB by default; the working set here is small (recent ids, moduli).
            .cache_capacity(cache)
            .open()
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let store = SledStore {
            exchanges: db.open_tree("exchanges").map_err(be)?,
            ids: db.open_tree("ids").map_err(be)?,
            dup: db.open_tree("dup").map_err(be)?,
            counters: db.open_tree("id_counters").map_err(be)?,
            moduli: db.open_tree("moduli").map_err(be)?,
            partners: db.open_tree("partners").map_err(be)?,
            raw: db.open_tree("raw").map_err(be)?,
            moduli_pezzi: db.open_tree(MODULI_PEZZI).map_err(be)?,
            alberi: super::ALBERI
                .iter()
                .map(|n| Ok((*n, db.open_tree(n).map_err(be)?)))
                .collect::<Result<_>>()?,
            indice: RwLock::new(Indice::new()),
            cura: Box::new(manutenzione::Cura {
                meta: db.open_tree("meta").map_err(be)?,
                seq_base: AtomicU64::new(0),
                lock: Mutex::new(()),
                path: path.to_path_buf(),
            }),
            commit: commit::GroupCommit::avvia(db.clone())
                .map_err(|e| StoreError::Backend(format!("cannot start the commit thread: {e}")))?,
            db,
        };
        store.alza_base()?;
        let mut stale = Vec::new();
        for kv in store.dup.iter() {
            let (k, v) = kv.map_err(be)?;
            if decode_dup(&v)?.seq == 0 {
                stale.push(k);
            }
        }
        for k in stale {
            store.dup.remove(k).map_err(be)?;
        }
        {
            let mut indice = store.indice.write().unwrap_or_else(|e| e.into_inner());
            for kv in store.moduli.iter() {
                let (k, v) = kv.map_err(be)?;
                let v = store.modulo_intero(&k, &v)?;
                indicizza(&mut indice, &k, Some(&v));
            }
        }
        Ok(store)
    }

    fn albero(&self, nome: &str) -> Result<&sled::Tree> {
        self.alberi
            .iter()
            .find(|(n, _)| *n == nome)
            .map(|(_, t)| t)
            .ok_or_else(|| StoreError::Backend(format!("no tree '{nome}'")))
    }

    /// Reads back what a restart depends on — the latest exchanges, every outbox entry, the
    /// Identificatore counters — and says what the store holds; an error names what is damaged.
    pub fn controlla(&self) -> Result<String> {
        let t = std::time::Instant::now();
        let mut ultimi = 0;
        for kv in self.exchanges.iter().rev().take(100) {
            let (_, v) = kv.map_err(be)?;
            self.leggi_exchange(&v, true)?;
            ultimi += 1;
        }
        let mut outbox = 0;
        for kv in self.albero("outbox")?.iter() {
            let (k, v) = kv.map_err(be)?;
            serde_json::from_slice::<serde_json::Value>(&v)
                .map_err(|e| StoreError::Corrupt(format!("outbox entry {k:?}: {e}")))?;
            outbox += 1;
        }
        for kv in self.counters.iter() {
            let (k, v) = kv.map_err(be)?;
            if v.len() != 4 && v.len() != 8 {
                return Err(StoreError::Corrupt(format!("id counter {k:?}")));
            }
        }
        let moduli: usize = self
            .indice
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|t| t.len())
            .sum();
        Ok(format!(
            "{} exchanges (last {ultimi} read back), {} ids in the duplicate filter, {moduli} moduli, {outbox} forwards in the outbox, {} bytes, checked in {} ms",
            self.exchanges.len(),
            self.dup.len(),
            self.size_on_disk(),
            t.elapsed().as_millis()
        ))
    }

    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

/// Applies a write of the `moduli` tree (key `kind/code`) to the index.
fn indicizza(indice: &mut Indice, chiave: &[u8], valore: Option<&[u8]>) {
    let leggero = valore
        .and_then(|v| serde_json::from_slice::<StoredModulo>(v).ok())
        .and_then(|m| Leggero::da(&m))
        .map(Arc::new);
    indicizza_leggero(indice, chiave, leggero);
}

/// Puts (or, with None, takes out) a modulo's entry of the index.
fn indicizza_leggero(indice: &mut Indice, chiave: &[u8], leggero: Option<Arc<Leggero>>) {
    let chiave = String::from_utf8_lossy(chiave);
    let Some((kind, code)) = chiave.split_once('/') else {
        return;
    };
    match leggero {
        Some(l) => {
            indice
                .entry(kind.to_string())
                .or_default()
                .insert(code.to_string(), l);
        }
        None => {
            if let Some(t) = indice.get_mut(kind) {
                t.remove(code);
            }
        }
    }
}

fn decode_dup(v: &[u8]) -> Result<DupEntry> {
    serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("dup entry: {e}")))
}

fn encode_dup(d: &DupEntry) -> Vec<u8> {
    serde_json::to_vec(d).unwrap_or_default()
}

/// Raw messages are kept in pieces of this size in their own tree: sled holds large values
/// in memory for good (measured: a 9 MiB message each time grew the process by about as much,
/// without end), small ones it pages like everything else.
const PEZZO: usize = 8 * 1024;

/// sled's page cache, for the tools that open the store (`[store] cache_mb` for `pdd serve`).
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// A stored modulo larger than a piece is kept in the `moduli_pezzi` tree, keyed
/// `moduli key | 0 | version (u64 BE) | n (u32 BE)`, and its `moduli` value is this marker, the
/// version and the length (u64 BE each). sled rewrites whole nodes, values included, as keys are
/// added around them: 50 KB moduli kept whole made every exchange write about 290 KB.
/// Pieces go first and the marker last (a crash leaves at most unreferenced pieces); pieces of an
/// earlier version stay until the purge, so a backup that read the marker finds them.
const MODULO_A_PEZZI: &[u8; 4] = b"\xffPZ1";
pub(super) const MODULI_PEZZI: &str = "moduli_pezzi";

fn chiave_pezzo_modulo(chiave: &[u8], versione: u64, n: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(chiave.len() + 13);
    k.extend_from_slice(chiave);
    k.push(0);
    k.extend_from_slice(&versione.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The version and length a `moduli` value in pieces points to; None for a value kept whole.
pub(super) fn segnaposto(v: &[u8]) -> Option<(u64, u64)> {
    let rest = v.strip_prefix(&MODULO_A_PEZZI[..])?;
    let versione = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let len = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
    Some((versione, len))
}

/// Marks a record whose raw messages are in the `raw` tree, where the request length would be.
const RAW_A_PEZZI: u32 = u32::MAX;

/// Record layout: u32 LE meta length, meta JSON, then either `RAW_A_PEZZI`, u64 LE request
/// length, u64 LE response length (the messages in the `raw` tree, keyed seq | part | piece), or
/// u32 LE request length, request, response (messages that fit in one piece together, and
/// every record of earlier versions).
fn encode_exchange(ex: &Exchange) -> Vec<u8> {
    let meta = serde_json::to_vec(ex).unwrap_or_default();
    let dentro = in_linea(ex);
    let mut v = Vec::with_capacity(
        24 + meta.len()
            + if dentro {
                ex.request.len() + ex.response.len()
            } else {
                0
            },
    );
    v.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    v.extend_from_slice(&meta);
    if dentro {
        v.extend_from_slice(&(ex.request.len() as u32).to_le_bytes());
        v.extend_from_slice(&ex.request);
        v.extend_from_slice(&ex.response);
    } else {
        v.extend_from_slice(&RAW_A_PEZZI.to_le_bytes());
        v.extend_from_slice(&(ex.request.len() as u64).to_le_bytes());
        v.extend_from_slice(&(ex.response.len() as u64).to_le_bytes());
    }
    v
}

/// Whether an exchange's messages go in its record: small ones do, which saves two writes per
/// exchange (most ClicLavoro messages are a few KB); large ones go in pieces (see [`PEZZO`]).
fn in_linea(ex: &Exchange) -> bool {
    ex.request.len() + ex.response.len() <= PEZZO
}

/// The key of piece `n` of a message (`parte` 0: request, 1: response) of exchange `seq`.
fn chiave_pezzo(seq: u64, parte: u8, n: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8] = parte;
    k[9..].copy_from_slice(&n.to_be_bytes());
    k
}

/// Where a record's raw messages are.
enum Raw<'a> {
    /// In the record (earlier versions).
    Dentro(&'a [u8], &'a [u8]),
    /// In the `raw` tree, with their lengths.
    APezzi(u64, u64),
}

fn decode_exchange(v: &[u8]) -> Result<(Exchange, Raw<'_>)> {
    let corrupt = || StoreError::Corrupt("exchange record".into());
    let bytes = |at: usize, n: usize| v.get(at..at + n).ok_or_else(corrupt);
    let u32_at = |at: usize| -> Result<u32> {
        Ok(u32::from_le_bytes(
            bytes(at, 4)?.try_into().map_err(|_| corrupt())?,
        ))
    };
    let u64_at = |at: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(
            bytes(at, 8)?.try_into().map_err(|_| corrupt())?,
        ))
    };
    let ml = u32_at(0)? as usize;
    let meta = bytes(4, ml)?;
    let ex: Exchange =
        serde_json::from_slice(meta).map_err(|e| StoreError::Corrupt(format!("exchange: {e}")))?;
    let rl = u32_at(4 + ml)?;
    let raw = if rl == RAW_A_PEZZI {
        Raw::APezzi(u64_at(8 + ml)?, u64_at(16 + ml)?)
    } else {
        let start = 8 + ml;
        let rl = rl as usize;
        Raw::Dentro(
            v.get(start..start + rl).ok_or_else(corrupt)?,
            v.get(start + rl..).ok_or_else(corrupt)?,
        )
    };
    Ok((ex, raw))
}

impl SledStore {
    /// A stored exchange, with its raw messages when `with_raw`.
    fn leggi_exchange(&self, v: &[u8], with_raw: bool) -> Result<Exchange> {
        let (mut ex, raw) = decode_exchange(v)?;
        if with_raw {
            match raw {
                Raw::Dentro(req, resp) => {
                    ex.request = req.to_vec();
                    ex.response = resp.to_vec();
                }
                Raw::APezzi(lr, ls) => {
                    ex.request = self.pezzi(ex.seq, 0, lr)?;
                    ex.response = self.pezzi(ex.seq, 1, ls)?;
                }
            }
        }
        Ok(ex)
    }

    /// A message put back together from its pieces.
    /// A `moduli` value as it was written: read from its pieces when it is kept in pieces.
    pub(super) fn modulo_intero(&self, chiave: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        let Some((versione, len)) = segnaposto(v) else {
            return Ok(v.to_vec());
        };
        let mut prefisso = chiave.to_vec();
        prefisso.push(0);
        prefisso.extend_from_slice(&versione.to_be_bytes());
        let mut out = Vec::with_capacity(len as usize);
        for kv in self.moduli_pezzi.scan_prefix(&prefisso) {
            let (_, pezzo) = kv.map_err(be)?;
            out.extend_from_slice(&pezzo);
        }
        if out.len() as u64 != len {
            return Err(StoreError::Corrupt(format!(
                "modulo {}: {} of its {len} bytes in pieces",
                String::from_utf8_lossy(chiave),
                out.len()
            )));
        }
        Ok(out)
    }

    /// Writes a large `moduli` value's pieces; the marker to store in its place.
    fn metti_a_pezzi(&self, chiave: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        let versione = self.db.generate_id().map_err(be)?;
        for (n, pezzo) in v.chunks(PEZZO).enumerate() {
            self.moduli_pezzi
                .insert(chiave_pezzo_modulo(chiave, versione, n as u32), pezzo)
                .map_err(be)?;
        }
        let mut m = MODULO_A_PEZZI.to_vec();
        m.extend_from_slice(&versione.to_be_bytes());
        m.extend_from_slice(&(v.len() as u64).to_be_bytes());
        Ok(m)
    }

    fn pezzi(&self, seq: u64, parte: u8, len: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len as usize);
        let mut prefix = seq.to_be_bytes().to_vec();
        prefix.push(parte);
        for kv in self.raw.scan_prefix(prefix) {
            let (_, v) = kv.map_err(be)?;
            out.extend_from_slice(&v);
            if out.len() as u64 >= len {
                break;
            }
        }
        if out.len() as u64 != len {
            return Err(StoreError::Corrupt(format!(
                "exchange {seq}: a raw message has {} of its {len} bytes",
                out.len()
            )));
        }
        Ok(out)
    }
}

impl Store for SledStore {
    fn reserve_ids(&self, minute: &str, block: u32, capacity: u32) -> Result<u32> {
        let mut first = 0u32;
        let mut exhausted = false;
        self.counters
            .fetch_and_update(minute.as_bytes(), |old| {
                let used = old
                    .and_then(|o| o.try_into().ok())
                    .map(u32::from_be_bytes)
                    .unwrap_or(0);
                if used >= capacity {
                    exhausted = true;
                    return old.map(|o| o.to_vec());
                }
                exhausted = false;
                first = used + 1;
                Some(
                    used.saturating_add(block)
                        .min(capacity)
                        .to_be_bytes()
                        .to_vec(),
                )
            })
            .map_err(be)?;
        if exhausted {
            return Err(StoreError::Exhausted(minute.to_string()));
        }
        // Durable before any of these ids is handed out: no id is reused after a crash.
        self.db.flush().map_err(be)?;
        Ok(first)
    }

    fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim> {
        let fresh = DupEntry {
            seq: 0,
            first_ms: now_ms,
            repeats: 0,
            scade_ms,
        };
        match self
            .dup
            .compare_and_swap(
                id.as_bytes(),
                None as Option<&[u8]>,
                Some(encode_dup(&fresh)),
            )
            .map_err(be)?
        {
            Ok(()) => Ok(Claim::New),
            Err(cas) => match cas.current {
                Some(v) => Ok(Claim::Duplicate(decode_dup(&v)?)),
                None => Ok(Claim::New),
            },
        }
    }

    fn settle(&self, id: &str, seq: u64) -> Result<()> {
        self.dup
            .fetch_and_update(id.as_bytes(), |old| {
                let mut d = old.and_then(|o| decode_dup(o).ok()).unwrap_or(DupEntry {
                    seq: 0,
                    first_ms: 0,
                    repeats: 0,
                    scade_ms: None,
                });
                d.seq = seq;
                Some(encode_dup(&d))
            })
            .map_err(be)?;
        Ok(())
    }

    fn release(&self, id: &str) -> Result<()> {
        self.dup.remove(id.as_bytes()).map_err(be)?;
        Ok(())
    }

    fn count_repeat(&self, id: &str) -> Result<()> {
        self.dup
            .fetch_and_update(id.as_bytes(), |old| {
                let mut d = decode_dup(old?).ok()?;
                d.repeats = d.repeats.saturating_add(1);
                Some(encode_dup(&d))
            })
            .map_err(be)?;
        Ok(())
    }

    fn next_seq(&self) -> Result<u64> {
        // sled's generate_id is monotonic and never reused, also across crashes; the base lifts
        // it above what a copy of another store holds.
        self.seq_base_libero()
    }

    fn put_exchange(&self, ex: &Exchange) -> Result<()> {
        let key = ex.seq.to_be_bytes();
        // The pieces first: sled recovers a prefix of its writes, so a record found after a
        // crash has all its pieces.
        let pezzi: [(u8, &[u8]); 2] = if in_linea(ex) {
            [(0, &[]), (1, &[])]
        } else {
            [(0, &ex.request), (1, &ex.response)]
        };
        for (parte, msg) in pezzi {
            for (n, pezzo) in msg.chunks(PEZZO).enumerate() {
                self.raw
                    .insert(chiave_pezzo(ex.seq, parte, n as u32), pezzo)
                    .map_err(be)?;
            }
        }
        self.exchanges
            .insert(key, encode_exchange(ex))
            .map_err(be)?;
        for id in [&ex.request_id, &ex.response_id].into_iter().flatten() {
            // The first exchange carrying an id keeps it (a duplicate's record does not steal it).
            let _ = self
                .ids
                .compare_and_swap(id.as_bytes(), None as Option<&[u8]>, Some(&key[..]))
                .map_err(be)?;
        }
        Ok(())
    }

    fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        match self.exchanges.get(seq.to_be_bytes()).map_err(be)? {
            Some(v) => Ok(Some(self.leggi_exchange(&v, true)?)),
            None => Ok(None),
        }
    }

    fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>> {
        match self.ids.get(id.as_bytes()).map_err(be)? {
            Some(k) => {
                let b: [u8; 8] = k
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("id index".into()))?;
                self.exchange(u64::from_be_bytes(b))
            }
            None => Ok(None),
        }
    }

    fn recent(&self, limit: usize) -> Result<Vec<Exchange>> {
        let mut out = Vec::new();
        for kv in self.exchanges.iter().rev().take(limit) {
            let (_, v) = kv.map_err(be)?;
            out.push(self.leggi_exchange(&v, false)?);
        }
        Ok(out)
    }

    fn modulo(&self, kind: &str, code: &str) -> Result<Option<StoredModulo>> {
        let key = format!("{kind}/{code}");
        match self.moduli.get(key.as_bytes()).map_err(be)? {
            Some(v) => {
                let v = self.modulo_intero(key.as_bytes(), &v)?;
                Ok(Some(serde_json::from_slice(&v).map_err(|e| {
                    StoreError::Corrupt(format!("modulo: {e}"))
                })?))
            }
            None => Ok(None),
        }
    }

    fn partners(&self) -> Result<Vec<crate::registry::Soggetto>> {
        let mut out = Vec::new();
        for kv in self.partners.iter() {
            let (_, v) = kv.map_err(be)?;
            out.push(
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("partner: {e}")))?,
            );
        }
        Ok(out)
    }

    fn put_partner(&self, s: &crate::registry::Soggetto) -> Result<()> {
        let key = format!("{}/{}", s.tipo, s.nome);
        let v = serde_json::to_vec(s).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.partners.insert(key.as_bytes(), v).map_err(be)?;
        Ok(())
    }

    fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool> {
        Ok(self
            .partners
            .remove(format!("{tipo}/{nome}").as_bytes())
            .map_err(be)?
            .is_some())
    }

    fn scrivi(&self, batch: &[super::Scrittura]) -> Result<()> {
        use sled::Transactional;
        // sled's transaction over no tree panics on commit.
        if batch.is_empty() {
            return Ok(());
        }
        // The trees the batch touches, each once, and where each write goes among them.
        let mut nomi: Vec<&str> = Vec::new();
        for w in batch {
            if !nomi.contains(&w.albero) {
                nomi.push(w.albero);
            }
        }
        let trees = nomi
            .iter()
            .map(|n| self.albero(n))
            .collect::<Result<Vec<_>>>()?;
        // Batches that touch moduli hold the index from before their commit until it follows,
        // so two of them cannot leave it in the order opposite to the tree's.
        let mut indice = batch
            .iter()
            .any(|w| w.albero == "moduli")
            .then(|| self.indice.write().unwrap_or_else(|e| e.into_inner()));
        let idx: Vec<usize> = batch
            .iter()
            .map(|w| nomi.iter().position(|n| *n == w.albero).unwrap_or(0))
            .collect();
        // Large moduli: their pieces first, the marker in the batch.
        let segnaposti = batch
            .iter()
            .map(|w| match &w.valore {
                Some(v) if w.albero == "moduli" && v.len() > PEZZO => {
                    self.metti_a_pezzi(&w.chiave, v).map(Some)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>>>()?;
        let valore = |i: usize| segnaposti[i].as_deref().or(batch[i].valore.as_deref());
        if let ([w], [t]) = (batch, trees.as_slice()) {
            // One write is atomic by itself. sled's transactions (and batches) roll its log
            // buffer twice each, a write and two thread hand-offs: this is the common case
            // (a modulo with no forwards), and it costs a plain insert.
            match valore(0) {
                Some(v) => t.insert(w.chiave.as_slice(), v),
                None => t.remove(w.chiave.as_slice()),
            }
            .map_err(be)?;
        } else {
            trees
                .as_slice()
                .transaction(|tx| {
                    for (n, (w, i)) in batch.iter().zip(&idx).enumerate() {
                        match valore(n) {
                            Some(v) => tx[*i].insert(w.chiave.as_slice(), v)?,
                            None => tx[*i].remove(w.chiave.as_slice())?,
                        };
                    }
                    Ok::<(), sled::transaction::ConflictableTransactionError<()>>(())
                })
                .map_err(|e| StoreError::Backend(format!("transaction: {e:?}")))?;
        }
        if let Some(indice) = indice.as_mut() {
            for w in batch.iter().filter(|w| w.albero == "moduli") {
                match (&w.leggero, &w.valore) {
                    (Some(l), Some(_)) => indicizza_leggero(indice, &w.chiave, Some(l.clone())),
                    _ => indicizza(indice, &w.chiave, w.valore.as_deref()),
                }
            }
        }
        Ok(())
    }

    fn ha_modulo(&self, kind: &str, code: &str) -> Result<bool> {
        // Candidature and vacancies are all in the index (kept in step with every write);
        // messaggi are not.
        if kind == "messaggio" {
            return self
                .moduli
                .contains_key(super::chiave_modulo(kind, code))
                .map_err(be);
        }
        let indice = self.indice.read().unwrap_or_else(|e| e.into_inner());
        Ok(indice.get(kind).is_some_and(|t| t.contains_key(code)))
    }

    fn per_ogni_leggero(&self, kind: &str, f: &mut dyn FnMut(&Arc<Leggero>)) -> Result<()> {
        let indice = self.indice.read().unwrap_or_else(|e| e.into_inner());
        for l in indice.get(kind).into_iter().flat_map(|t| t.values()) {
            f(l);
        }
        Ok(())
    }

    fn leggi(&self, albero: &str, chiave: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.albero(albero)?.get(chiave).map_err(be)? {
            Some(v) if albero == "moduli" => Ok(Some(self.modulo_intero(chiave, &v)?)),
            v => Ok(v.map(|v| v.to_vec())),
        }
    }

    fn elenca(&self, albero: &str, prefisso: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.albero(albero)?
            .scan_prefix(prefisso)
            .map(|kv| {
                let (k, v) = kv.map_err(be)?;
                let v = if albero == "moduli" {
                    self.modulo_intero(&k, &v)?
                } else {
                    v.to_vec()
                };
                Ok((k.to_vec(), v))
            })
            .collect()
    }

    fn flush(&self) -> FlushFuture<'_> {
        Box::pin(async move { self.commit.durevole().await })
    }

    fn backup(&self, dest: &Path) -> Result<super::cura::Manifest> {
        self.copia(dest)
    }

    fn stats(&self) -> Result<super::cura::Stats> {
        self.statistiche()
    }

    fn check(&self) -> Result<super::cura::CheckReport> {
        self.verifica()
    }

    fn purge(&self, limits: &super::cura::PurgeLimits) -> Result<super::cura::PurgeReport> {
        self.purga(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Direction, Outcome};
    use super::*;

    /// A fresh path for a store (also for the tests of the submodules).
    pub(super) fn tmp(name: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("pdd-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    /// An accepted incoming exchange with small raw messages.
    pub(super) fn ex(seq: u64, id: &str) -> Exchange {
        let mut e = Exchange::nuovo(seq, Direction::In, "2024-01-01T00:00:00+00:00".into());
        e.answered_at = e.received_at.clone();
        e.request_id = Some(id.into());
        e.response_id = Some(format!("R{id}"));
        e.outcome = Outcome::Ok;
        e.http_status = 200;
        e.request = b"<req/>".to_vec();
        e.response = b"<resp/>".to_vec();
        e
    }

    #[test]
    fn exchanges_round_trip_and_index() {
        let p = tmp("ex");
        let s = SledStore::open(&p).unwrap();
        let a = s.next_seq().unwrap();
        let b = s.next_seq().unwrap();
        assert!(b > a);
        s.put_exchange(&ex(a, "A")).unwrap();
        s.put_exchange(&ex(b, "B")).unwrap();
        let got = s.exchange_by_id("RB").unwrap().unwrap();
        assert_eq!(got, ex(b, "B"));
        let recent = s.recent(10).unwrap();
        assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![b, a]);
        assert!(recent[0].request.is_empty());
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }

    #[test]
    fn raw_messages_in_pieces_and_records_of_the_earlier_layout() {
        let p = tmp("pezzi");
        let s = SledStore::open(&p).unwrap();
        // Lengths on, around and off the piece size, and empty.
        for (seq, (lr, ls)) in [
            (1u64, (3 * PEZZO, 0)),
            (2, (PEZZO + 1, PEZZO - 1)),
            (3, (0, 5)),
            (4, (PEZZO / 2, PEZZO / 2)),
            (5, (PEZZO, 1)),
        ] {
            let mut e = ex(seq, &format!("P{seq}"));
            e.request = (0..lr).map(|i| (i % 251) as u8).collect();
            e.response = (0..ls).map(|i| (i % 241) as u8).collect();
            s.put_exchange(&e).unwrap();
            assert_eq!(s.exchange(seq).unwrap().unwrap(), e, "seq {seq}");
            // Messages that fit in one piece together stay in the record.
            let pezzi = s.raw.scan_prefix(seq.to_be_bytes()).count();
            assert_eq!(pezzi == 0, lr + ls <= PEZZO, "seq {seq}: {pezzi} pieces");
        }
        // A record written whole by an earlier version still reads.
        let mut old = ex(9, "OLD");
        old.request = b"<req/>".to_vec();
        old.response = b"<resp/>".to_vec();
        let meta = serde_json::to_vec(&old).unwrap();
        let mut v = (meta.len() as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&meta);
        v.extend_from_slice(&(old.request.len() as u32).to_le_bytes());
        v.extend_from_slice(&old.request);
        v.extend_from_slice(&old.response);
        s.exchanges.insert(9u64.to_be_bytes(), v).unwrap();
        assert_eq!(s.exchange(9).unwrap().unwrap(), old);
        // A missing piece is named, not silently shortened.
        s.raw.remove(chiave_pezzo(1, 0, 1)).unwrap();
        assert!(matches!(s.exchange(1), Err(StoreError::Corrupt(_))));
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }

    #[test]
    fn claims_survive_restart_and_inflight_is_dropped() {
        let p = tmp("dup");
        {
            let s = SledStore::open(&p).unwrap();
            assert_eq!(s.claim("X", 1, None).unwrap(), Claim::New);
            assert!(matches!(
                s.claim("X", 2, None).unwrap(),
                Claim::Duplicate(_)
            ));
            s.settle("X", 7).unwrap();
            s.count_repeat("X").unwrap();
            assert_eq!(s.claim("Y", 3, None).unwrap(), Claim::New); // left in flight
            s.db.flush().unwrap();
        }
        let s = SledStore::open(&p).unwrap();
        match s.claim("X", 4, None).unwrap() {
            Claim::Duplicate(d) => assert_eq!((d.seq, d.repeats), (7, 1)),
            c => panic!("{c:?}"),
        }
        assert_eq!(s.claim("Y", 5, None).unwrap(), Claim::New);
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }

    #[test]
    fn batches_write_across_trees_and_may_be_empty() {
        use crate::store::Scrittura;
        let dir = tmp("batch");
        let s = SledStore::open(&dir).unwrap();
        s.scrivi(&[]).unwrap();
        s.scrivi(&[
            Scrittura::metti("outbox", 1u64.to_be_bytes().to_vec(), &"a"),
            Scrittura::metti("moduli", "candidatura/X", &"b"),
            Scrittura::metti("outbox", 2u64.to_be_bytes().to_vec(), &"c"),
        ])
        .unwrap();
        assert_eq!(s.elenca("outbox", b"").unwrap().len(), 2);
        assert_eq!(
            s.leggi("moduli", b"candidatura/X").unwrap().as_deref(),
            Some(&b"\"b\""[..])
        );
        s.scrivi(&[Scrittura::togli("outbox", 1u64.to_be_bytes().to_vec())])
            .unwrap();
        assert_eq!(s.elenca("outbox", b"").unwrap().len(), 1);
        assert!(s.scrivi(&[Scrittura::metti("nessuno", "k", &1)]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A stored Candidatura with a published view, for the index and pieces tests.
    fn candidatura(code: &str, stato: crate::store::StatoModulo) -> StoredModulo {
        StoredModulo {
            kind: "candidatura".into(),
            code: code.into(),
            versione: "2.0".into(),
            stato,
            received_at: "2026-11-27T10:00:00.000+01:00".into(),
            updated_at: "2026-11-27T10:00:00.000+01:00".into(),
            request_id: None,
            mittente: None,
            scadenza: None,
            precedente: None,
            attuale: None,
            xml: "<x/>".into(),
            destinazioni: vec![],
            titolare: None,
            scheda: Some(crate::rete::scheda::candidatura(&Default::default())),
        }
    }

    #[test]
    fn large_moduli_are_kept_in_pieces_and_read_whole() {
        use crate::store::cura::PurgeLimits;
        use crate::store::{chiave_modulo, Scrittura, StatoModulo};
        let dir = tmp("moduli-pezzi");
        let m = |xml: String| StoredModulo {
            xml,
            ..candidatura("BIG", StatoModulo::Attivo)
        };
        let purga = |s: &SledStore| {
            s.purge(&PurgeLimits {
                exchanges_before_ms: None,
                dup_before_ms: None,
                expired_before_ms: 0,
            })
            .unwrap()
            .moduli_pieces
        };
        let chiave = chiave_modulo("candidatura", "BIG");
        let s = SledStore::open(&dir).unwrap();
        let v1 = m("<a>".repeat(20_000));
        s.scrivi(&[Scrittura::modulo(&v1)]).unwrap();
        let pezzi = s.moduli_pezzi.len();
        assert!(pezzi >= 7, "{pezzi} pieces");
        assert!(
            s.moduli.get(&chiave).unwrap().unwrap().len() < 64,
            "a marker"
        );
        assert_eq!(s.modulo("candidatura", "BIG").unwrap().unwrap(), v1);
        let json = serde_json::to_vec(&v1).unwrap();
        assert_eq!(s.leggi("moduli", &chiave).unwrap().unwrap(), json);
        assert_eq!(
            s.elenca("moduli", b"candidatura/").unwrap(),
            vec![(chiave.clone(), json)]
        );
        assert!(s.ha_modulo("candidatura", "BIG").unwrap());
        assert_eq!(purga(&s), 0, "the live version's pieces stay");
        // A new version (with a forward: a transaction) replaces it; the old pieces stay until
        // the purge.
        let v2 = m("<b>".repeat(30_000));
        s.scrivi(&[
            Scrittura::modulo(&v2),
            Scrittura::metti("outbox", 1u64.to_be_bytes().to_vec(), &"x"),
        ])
        .unwrap();
        assert_eq!(s.modulo("candidatura", "BIG").unwrap().unwrap(), v2);
        s.scrivi(&[Scrittura::togli("outbox", 1u64.to_be_bytes().to_vec())])
            .unwrap();
        assert_eq!(purga(&s), pezzi as u64);
        assert_eq!(s.modulo("candidatura", "BIG").unwrap().unwrap(), v2);
        let c = s.check().unwrap();
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        drop(s);
        let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(s.modulo("candidatura", "BIG").unwrap().unwrap(), v2);
        assert!(
            s.ha_modulo("candidatura", "BIG").unwrap(),
            "indexed at open"
        );
        // Small again: kept whole; then removed: no piece left after the purge.
        let v3 = m("<c/>".into());
        s.scrivi(&[Scrittura::modulo(&v3)]).unwrap();
        assert_eq!(s.modulo("candidatura", "BIG").unwrap().unwrap(), v3);
        assert!(purga(&s) > 0);
        assert_eq!(s.moduli_pezzi.len(), 0);
        s.scrivi(&[Scrittura::modulo(&v2)]).unwrap();
        s.scrivi(&[Scrittura::togli("moduli", chiave.clone())])
            .unwrap();
        assert!(s.modulo("candidatura", "BIG").unwrap().is_none());
        assert!(purga(&s) > 0);
        assert_eq!(s.moduli_pezzi.len(), 0);
        // A missing piece is named.
        s.scrivi(&[Scrittura::modulo(&v1)]).unwrap();
        let k = s.moduli_pezzi.iter().nth(3).unwrap().unwrap().0;
        s.moduli_pezzi.remove(k).unwrap();
        assert!(matches!(
            s.modulo("candidatura", "BIG"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(!s.check().unwrap().problems.is_empty());
        drop(s);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_index_of_moduli_follows_writes_and_reopens() {
        use crate::store::{chiave_modulo, Scrittura, StatoModulo};
        let dir = tmp("indice");
        let m = candidatura;
        // Written with the entry at hand (the gateway's way) and as bare records: the index
        // must be the same either way, and the same as the one rebuilt at open.
        let put = |x: &StoredModulo| {
            if x.code == "C" {
                Scrittura::metti("moduli", chiave_modulo(&x.kind, &x.code), x)
            } else {
                Scrittura::modulo(x)
            }
        };
        let tutti = |s: &SledStore| {
            let mut v = Vec::new();
            s.per_ogni_leggero("candidatura", &mut |l| v.push((**l).clone()))
                .unwrap();
            v
        };
        let stati = |s: &SledStore| tutti(s).into_iter().map(|l| l.stato).collect::<Vec<_>>();
        let s = SledStore::open(&dir).unwrap();
        s.scrivi(&[
            put(&m("A", StatoModulo::Attivo)),
            put(&m("B", StatoModulo::Attivo)),
        ])
        .unwrap();
        s.scrivi(&[put(&m("A", StatoModulo::Scaduto))]).unwrap();
        assert_eq!(stati(&s), vec![StatoModulo::Scaduto, StatoModulo::Attivo]);
        let v = tutti(&s);
        assert!(
            v[0].scheda.is_none() && v[1].scheda.is_some(),
            "expired: no published view kept"
        );
        s.scrivi(&[Scrittura::togli(
            "moduli",
            chiave_modulo("candidatura", "B"),
        )])
        .unwrap();
        assert_eq!(stati(&s), vec![StatoModulo::Scaduto]);
        assert!(s.ha_modulo("candidatura", "A").unwrap());
        assert!(!s.ha_modulo("candidatura", "B").unwrap(), "removed");
        assert!(!s.ha_modulo("vacancy", "A").unwrap());
        s.scrivi(&[Scrittura::metti(
            "moduli",
            chiave_modulo("messaggio", "M"),
            &m("M", StatoModulo::Attivo),
        )])
        .unwrap();
        assert!(s.ha_modulo("messaggio", "M").unwrap() && !s.ha_modulo("messaggio", "N").unwrap());
        // Not published here (no scheda): still indexed, for the sweeper.
        let mut a = m("A", StatoModulo::Attivo);
        a.scheda = None;
        s.scrivi(&[put(&a), put(&m("C", StatoModulo::Chiuso))])
            .unwrap();
        assert_eq!(stati(&s), vec![StatoModulo::Attivo, StatoModulo::Chiuso]);
        let prima = tutti(&s);
        drop(s);
        let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(
            tutti(&s),
            prima,
            "the same entries, rebuilt from the records"
        );
        assert_eq!(
            stati(&s),
            vec![StatoModulo::Attivo, StatoModulo::Chiuso],
            "rebuilt at open"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn id_blocks_never_overlap_across_reopen() {
        let p = tmp("ids");
        let first = {
            let s = SledStore::open(&p).unwrap();
            assert_eq!(
                s.reserve_ids("2024-01-01_10:00", 100, 9_999_999).unwrap(),
                1
            );
            s.reserve_ids("2024-01-01_10:00", 100, 9_999_999).unwrap()
        };
        assert_eq!(first, 101);
        let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
        assert_eq!(
            s.reserve_ids("2024-01-01_10:00", 100, 9_999_999).unwrap(),
            201
        );
        assert_eq!(
            s.reserve_ids("2024-01-01_10:01", 100, 9_999_999).unwrap(),
            1
        );
        assert_eq!(s.reserve_ids("m", 100, 150).unwrap(), 1);
        assert_eq!(s.reserve_ids("m", 100, 150).unwrap(), 101);
        assert!(matches!(
            s.reserve_ids("m", 100, 150),
            Err(StoreError::Exhausted(_))
        ));
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }
}
