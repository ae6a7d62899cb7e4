//! Backup, statistics, the full check and retention of the sled store. What a backup
//! guarantees, and why, is in [`crate::store::care`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, FixedOffset};

use super::codec::{
    albero, be, chiave_di_prima, chiave_id, contatore, decode_dup, decode_exchange,
    id_della_chiave, inizio_ids, ms_del_diagnostico, seq_di, svela, Raw, IDS_FUORI_FORMA, PEZZO,
};
use super::{registro, Engine};
use crate::store::care::{
    CheckReport, Manifest, PurgeLimits, PurgeReport, Stats, TreeStats, FORMATO, MANIFEST,
};
use crate::store::{Forward, Result, StoreError, StoredModulo};

/// What the store keeps for its care.
pub(super) struct CareState {
    /// The store's own settings (`seq_base`).
    pub meta: sled::Tree,
    /// Sequence numbers start above this (a copy does not carry sled's id generator).
    pub seq_base: AtomicU64,
    /// Held by a backup, a check and a purge, which must not interleave.
    pub lock: Mutex<()>,
    pub path: PathBuf,
}

/// Key of the sequence floor in the `meta` tree (u64 BE).
const SEQ_BASE: &[u8] = b"seq_base";

/// Key of the flag in `meta` saying the ids index and the duplicate filter are keyed by
/// [`chiave_id`] (minute first, kept once); stores made before are rekeyed once at open. (The
/// flag of the layout before, minute first and then the whole id, was `chiavi_id_per_minuto`.)
pub(super) const CHIAVI_ID: &[u8] = b"chiavi_id_minuto_una_volta";

/// Key of the flag in `meta` saying every candidatura and vacancy has its summary in the
/// `sommari` tree; a store made before gets them once at open. A backup does not copy the
/// summaries (they are made from the moduli), so its restore writes them again.
pub(super) const SOMMARI: &[u8] = b"sommari_dei_moduli";

/// sled's own tree (the `Db` itself); pdd keeps nothing in it.
const DEFAULT_TREE: &[u8] = b"__sled__default";

/// The order a backup reads the trees in: the reverse of the order an exchange writes them
/// (see [`crate::store::care`]). Other trees follow, `meta` is written by the copy itself.
const ORDINE: [&str; 16] = [
    albero::DUP,
    albero::IDS,
    albero::RECEIVED,
    albero::EXCHANGES,
    albero::RAW,
    albero::MODULI,
    albero::MODULI_PEZZI,
    albero::OUTBOX,
    albero::CONTATTI,
    albero::EURES,
    albero::USERS,
    albero::RAPPORTI,
    albero::INTERMEDIARI,
    albero::DIAGNOSTICI,
    albero::PARTNERS,
    albero::COUNTERS,
];

/// Entries per batch when copying or removing.
const LOTTO: usize = 1000;

/// Writes a whole tree's worth of entries in atomic batches of [`LOTTO`] (a migration at open,
/// a backup's copy): one batch would hold them all in memory.
pub(super) struct ALotti<'a> {
    albero: &'a sled::Tree,
    lotto: sled::Batch,
    nel_lotto: usize,
}

impl<'a> ALotti<'a> {
    pub(super) fn new(albero: &'a sled::Tree) -> ALotti<'a> {
        ALotti {
            albero,
            lotto: sled::Batch::default(),
            nel_lotto: 0,
        }
    }

    pub(super) fn metti(
        &mut self,
        k: impl Into<sled::IVec>,
        v: impl Into<sled::IVec>,
    ) -> Result<()> {
        self.lotto.insert(k, v);
        self.conta()
    }

    pub(super) fn togli(&mut self, k: impl Into<sled::IVec>) -> Result<()> {
        self.lotto.remove(k);
        self.conta()
    }

    /// Moves an entry to a new key, both in the same batch.
    pub(super) fn sposta(&mut self, da: sled::IVec, a: Vec<u8>, v: sled::IVec) -> Result<()> {
        self.lotto.remove(da);
        self.lotto.insert(a, v);
        self.conta()
    }

    fn conta(&mut self) -> Result<()> {
        self.nel_lotto += 1;
        if self.nel_lotto == LOTTO {
            self.albero
                .apply_batch(std::mem::take(&mut self.lotto))
                .map_err(be)?;
            self.nel_lotto = 0;
        }
        Ok(())
    }

    pub(super) fn fine(self) -> Result<()> {
        self.albero.apply_batch(self.lotto).map_err(be)
    }
}

/// sled's page cache for a store being written by a backup.
const CACHE_COPIA: u64 = 16 * 1024 * 1024;

/// The largest Identificatore counter (seven digits).
const CONTATORE_MAX: u64 = 9_999_999;

/// Bytes of every file under `dir`.
pub(crate) fn byte_in(dir: &Path) -> u64 {
    let mut tot = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => tot += byte_in(&e.path()),
                Ok(m) => tot += m.len(),
                Err(_) => {}
            }
        }
    }
    tot
}

impl Engine {
    /// Raises the sequence floor above every sequence number the store holds (exchanges, their
    /// raw pieces, outbox entries), so that a store copied tree by tree, without sled's id
    /// generator, never hands out one of them again. Called at open.
    pub(super) fn alza_base(&self) -> Result<()> {
        let salvata = match self.cura.meta.get(SEQ_BASE).map_err(be)? {
            Some(v) => seq_di(&v).ok_or_else(|| StoreError::Corrupt("meta seq_base".into()))?,
            None => 0,
        };
        self.cura.seq_base.store(salvata, Ordering::Release);
        let tetto = self.tetto()?;
        if self.seq_base_libero()? <= tetto {
            self.imposta_base(tetto)?;
        }
        Ok(())
    }

    /// What is wrong with the summary of a modulo just read, if anything. A modulo written
    /// between the two reads is read again once, so that a check beside a working gateway
    /// does not report the race.
    fn sommario_diverso(&self, k: &[u8], m: &StoredModulo) -> Result<Option<String>> {
        if !self.cura.meta.contains_key(SOMMARI).map_err(be)? {
            return Ok(None);
        }
        let mut m = std::borrow::Cow::Borrowed(m);
        for volta in 0..2 {
            let atteso = crate::store::Sommario::di(&m);
            let trovato = self.sommario_salvato(k)?;
            let p = match (&atteso, trovato) {
                (None, None) => return Ok(None),
                (None, Some(_)) => "a summary, but it is a messaggio".to_string(),
                (Some(_), None) => "no summary in the index's tree".to_string(),
                (Some(a), Some(v)) => match super::codec::decodifica_sommario(&v) {
                    Ok(s) if &s == a => return Ok(None),
                    Ok(_) => "its summary differs from its record".to_string(),
                    Err(e) => e.to_string(),
                },
            };
            if volta == 1 {
                return Ok(Some(p));
            }
            let Some(v) = self.moduli.get(k).map_err(be)? else {
                return Ok(None);
            };
            match super::codec::decodifica_modulo(&self.modulo_intero(k, &v)?) {
                Ok(nuovo) => m = std::borrow::Cow::Owned(nuovo),
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// The summary kept for the modulo whose key is `k`: beside its pointer for a modulo kept in
    /// the log, else in the summaries' tree.
    fn sommario_salvato(&self, k: &[u8]) -> Result<Option<sled::IVec>> {
        if let Some(v) = self.moduli.get(k).map_err(be)? {
            if let Some((_, s)) = registro::Puntatore::di(&v) {
                return Ok((!s.is_empty()).then(|| sled::IVec::from(s)));
            }
        }
        self.sommari.get(k).map_err(be)
    }

    /// Records in `meta` that the migration `flag` names is done, durably: the next open skips it.
    pub(super) fn migrazione_fatta(&self, flag: &[u8]) -> Result<()> {
        self.cura.meta.insert(flag, &[1u8][..]).map_err(be)?;
        self.db.flush().map_err(be)?;
        Ok(())
    }

    /// Rekeys the ids index and the duplicate filter of a store made before their keys were
    /// [`chiave_id`]'s (the id itself, or the minute then the whole id), once: batches of a
    /// thousand, each atomic (the new key in, the old out), so a crash in between leaves every
    /// entry under one key or the other, and the next open finishes (a key already of the new
    /// form is left as it is).
    pub(super) fn riordina_chiavi_id(&self) -> Result<()> {
        if self.cura.meta.contains_key(CHIAVI_ID).map_err(be)? {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let mut n = 0u64;
        for albero in [&self.ids, &self.dup] {
            let mut lotti = ALotti::new(albero);
            for kv in albero.iter() {
                let (k, v) = kv.map_err(be)?;
                let Some(nuova) = chiave_di_prima(&k) else {
                    continue;
                };
                lotti.sposta(k, nuova, v)?;
                n += 1;
            }
            lotti.fine()?;
        }
        self.migrazione_fatta(CHIAVI_ID)?;
        if n > 0 {
            tracing::info!(
                entries = n,
                millis = t0.elapsed().as_millis() as u64,
                "store: ids index and duplicate filter rekeyed (minute first, kept once)"
            );
        }
        Ok(())
    }

    /// The highest sequence number in use.
    fn tetto(&self) -> Result<u64> {
        let mut tetto = 0;
        for t in [&self.exchanges, &self.raw, &self.outbox] {
            if let Some((k, _)) = t.last().map_err(be)? {
                tetto = tetto.max(seq_di(&k).unwrap_or(0));
            }
        }
        Ok(tetto)
    }

    /// A fresh sequence number: sled's generator (monotonic, never reused, also across
    /// crashes) above the floor.
    pub(super) fn seq_base_libero(&self) -> Result<u64> {
        Ok(self
            .cura
            .seq_base
            .load(Ordering::Acquire)
            .saturating_add(self.db.generate_id().map_err(be)?)
            .saturating_add(1))
    }

    fn imposta_base(&self, base: u64) -> Result<()> {
        self.cura
            .meta
            .insert(SEQ_BASE, &base.to_be_bytes())
            .map_err(be)?;
        self.db.flush().map_err(be)?;
        self.cura.seq_base.store(base, Ordering::Release);
        Ok(())
    }

    /// Takes over what must never be reused from the store this one replaces (`pdd store
    /// restore`): its Identificatore counters, where higher, and its sequence numbers. Returns
    /// how many counters were raised.
    pub(super) fn eredita_da(&self, vecchio: &Engine) -> Result<usize> {
        let mut alzati = 0;
        for kv in vecchio.counters.iter() {
            let (k, v) = kv.map_err(be)?;
            let Some(loro) = contatore(&v) else { continue };
            let nostro = self
                .counters
                .get(&k)
                .map_err(be)?
                .and_then(|v| contatore(&v))
                .unwrap_or(0);
            if loro > nostro {
                let loro = u32::try_from(loro).unwrap_or(u32::MAX);
                self.counters.insert(&k, &loro.to_be_bytes()).map_err(be)?;
                alzati += 1;
            }
        }
        let loro = vecchio.seq_base_libero()?;
        if self.seq_base_libero()? <= loro {
            self.imposta_base(loro)?;
        }
        self.db.flush().map_err(be)?;
        Ok(alzati)
    }

    fn albero_per_nome(db: &sled::Db, nome: &[u8]) -> Result<sled::Tree> {
        if nome == DEFAULT_TREE {
            Ok((**db).clone())
        } else {
            db.open_tree(nome).map_err(be)
        }
    }

    /// The copy behind [`crate::store::Store::backup`].
    pub(super) fn copia(&self, dest: &Path, started: DateTime<FixedOffset>) -> Result<Manifest> {
        let _cura = self.cura.lock.lock().unwrap_or_else(|e| e.into_inner());
        let started = crate::clock::ora::testo(&started);
        if dest.exists()
            && std::fs::read_dir(dest)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(StoreError::Invalid(format!(
                "{} exists and is not an empty directory",
                dest.display()
            )));
        }
        // What was acknowledged is on disk here too, whatever happens to the copy.
        self.db.flush().map_err(be)?;
        // Compressed and segmented as the store is: a restored backup behaves as the store did.
        let comprimi = super::compresso(&self.cura.path).unwrap_or(false);
        let segmento = super::segmento(&self.cura.path).unwrap_or(super::SEGMENTO);
        let copia = super::configurazione(dest, CACHE_COPIA, comprimi, segmento)
            .create_new(true)
            .open()
            .map_err(|e| match be(e) {
                StoreError::Io { source, .. } => StoreError::Io {
                    what: format!("cannot create {}", dest.display()),
                    source,
                },
                e => e,
            })?;
        let mut nomi: Vec<Vec<u8>> = ORDINE.iter().map(|n| n.as_bytes().to_vec()).collect();
        for n in self.db.tree_names() {
            if !nomi.iter().any(|m| m[..] == n[..])
                && &n[..] != b"meta"
                && &n[..] != albero::SOMMARI.as_bytes()
            {
                nomi.push(n.to_vec());
            }
        }
        let mut trees = BTreeMap::new();
        let mut saltati = 0u64;
        for nome in nomi {
            let da = Self::albero_per_nome(&self.db, &nome)?;
            if nome == DEFAULT_TREE && da.is_empty() {
                continue;
            }
            let a = Self::albero_per_nome(&copia, &nome)?;
            let dup = nome == b"dup";
            let mut lotti = ALotti::new(&a);
            let mut n = 0u64;
            for kv in da.iter() {
                let (k, v) = kv.map_err(be)?;
                // A claim in flight: its exchange was not answered (see the module doc).
                if dup && decode_dup(&v).is_ok_and(|d| d.seq == 0) {
                    saltati += 1;
                    continue;
                }
                lotti.metti(k, v)?;
                n += 1;
            }
            lotti.fine()?;
            trees.insert(String::from_utf8_lossy(&nome).into_owned(), n);
        }
        // Claims in flight live in memory (an earlier version kept them in the tree, above):
        // none goes into the copy.
        saltati += self.in_volo.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        // Above every sequence number handed out until now, so above all the copy holds.
        let seq_base = self.seq_base_libero()?;
        let meta = copia.open_tree("meta").map_err(be)?;
        meta.insert(SEQ_BASE, &seq_base.to_be_bytes()).map_err(be)?;
        // The keys were copied as they are: of the new form (rekeyed at this store's open).
        meta.insert(CHIAVI_ID, &[1u8][..]).map_err(be)?;
        let registro = self.copia_registro(dest, &meta)?;
        copia.flush().map_err(be)?;
        let bytes_on_disk = copia.size_on_disk().map_err(be)? + registro;
        drop(copia);
        let manifest = Manifest {
            format: FORMATO,
            started,
            // Set by the caller, who has the clock.
            finished: String::new(),
            pdd_version: env!("CARGO_PKG_VERSION").to_string(),
            source: self
                .cura
                .path
                .canonicalize()
                .unwrap_or_else(|_| self.cura.path.clone())
                .display()
                .to_string(),
            trees,
            skipped_in_flight: saltati,
            seq_base,
            bytes_on_disk,
        };
        Ok(manifest)
    }

    /// Reads back what a restart depends on — the latest exchanges, every outbox entry, the
    /// Identificatore counters — and says what the store holds that is known without reading
    /// it all; an error names what is damaged.
    pub(super) fn riepilogo(&self) -> Result<String> {
        let t = std::time::Instant::now();
        let mut ultimi = 0;
        for kv in self.exchanges.iter().rev().take(100) {
            let (_, v) = kv.map_err(be)?;
            self.leggi_exchange(&v, true)?;
            ultimi += 1;
        }
        let mut outbox = 0;
        for kv in self.outbox.iter() {
            let (k, v) = kv.map_err(be)?;
            serde_json::from_slice::<serde_json::Value>(&v)
                .map_err(|e| StoreError::corrupt(format!("outbox entry {k:?}: {e}")))?;
            outbox += 1;
        }
        for kv in self.counters.iter() {
            let (k, v) = kv.map_err(be)?;
            if contatore(&v).is_none() {
                return Err(StoreError::corrupt(format!("id counter {k:?}")));
            }
        }
        let moduli: usize = self
            .indice
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|t| t.len())
            .sum();
        // The exchanges and the duplicate filter are not counted: sled counts a tree by
        // reading every entry, 1.75 s before a store of a million exchanges could listen, for
        // a figure `pdd store stats` gives when asked.
        Ok(format!(
            "{moduli} moduli, {outbox} forwards in the outbox, {} bytes, the last {ultimi} exchanges read back, checked in {} ms (`pdd store stats` counts the rest)",
            self.db.size_on_disk().unwrap_or(0),
            t.elapsed().as_millis()
        ))
    }

    /// Entries and bytes per tree (reads every tree through).
    pub(super) fn statistiche(&self) -> Result<Stats> {
        let mut trees = Vec::new();
        let mut nomi = self.db.tree_names();
        nomi.sort();
        for nome in nomi {
            let t = Self::albero_per_nome(&self.db, &nome)?;
            let mut s = TreeStats {
                name: String::from_utf8_lossy(&nome).into_owned(),
                ..Default::default()
            };
            for kv in t.iter() {
                let (k, v) = kv.map_err(be)?;
                s.entries += 1;
                s.key_bytes += k.len() as u64;
                s.value_bytes += v.len() as u64;
            }
            if nome == DEFAULT_TREE && s.entries == 0 {
                continue;
            }
            trees.push(s);
        }
        let elenco = self
            .segmenti
            .elenco()
            .map_err(|e| StoreError::io("listing the log's segments", e))?;
        Ok(Stats {
            log_segments: elenco.len() as u64,
            log_bytes: elenco.iter().map(|(_, n)| n).sum(),
            path: self.cura.path.display().to_string(),
            trees,
            size_on_disk: self.db.size_on_disk().map_err(be)?,
            bytes_in_directory: byte_in(&self.cura.path),
        })
    }

    /// Whether a message's pieces are all there: indexes 0, 1, … and `len` bytes in all.
    fn controlla_pezzi(&self, seq: u64, parte: u8, len: u64) -> Result<Option<String>> {
        let cosa = if parte == 0 { "request" } else { "response" };
        let mut prefisso = seq.to_be_bytes().to_vec();
        prefisso.push(parte);
        let (mut letti, mut atteso) = (0u64, 0u32);
        for kv in self.raw.scan_prefix(&prefisso) {
            let (k, v) = kv.map_err(be)?;
            if letti >= len {
                break;
            }
            let n = k
                .get(9..13)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes);
            if n != Some(atteso) {
                return Ok(Some(format!(
                    "exchange {seq}: raw {cosa} piece {atteso} is missing ({letti} of its {len} bytes before it)"
                )));
            }
            if v.len() > PEZZO {
                return Ok(Some(format!(
                    "exchange {seq}: raw {cosa} piece {atteso} has {} bytes",
                    v.len()
                )));
            }
            letti += v.len() as u64;
            atteso += 1;
        }
        Ok((letti != len).then(|| {
            format!(
                "exchange {seq}: raw {cosa} piece {atteso} is missing ({letti} of its {len} bytes before it)"
            )
        }))
    }

    /// The full check behind [`crate::store::Store::check`].
    pub(super) fn verifica(&self) -> Result<CheckReport> {
        let _cura = self.cura.lock.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = std::time::Instant::now();
        let mut r = CheckReport::default();
        let mostra = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        // The ids index and the duplicate filter: the id the key holds.
        let mostra_id = |k: &[u8]| {
            String::from_utf8_lossy(&id_della_chiave(k).unwrap_or(k.into())).into_owned()
        };

        // Exchange records, and the pieces of their raw messages.
        let mut primo: Option<u64> = None;
        for kv in self.exchanges.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("exchanges", 1);
            let Some(seq) = seq_di(&k).filter(|_| k.len() == 8) else {
                r.problema(format!("exchanges: key {k:?} is not a sequence number"));
                continue;
            };
            primo.get_or_insert(seq);
            let valore = v;
            let v = match self
                .dal_registro(&valore)
                .and_then(|v| Ok(svela(&v)?.into_owned()))
            {
                Ok(v) => v,
                Err(e) => {
                    r.problema(format!("exchange {seq}: {e}"));
                    continue;
                }
            };
            match decode_exchange(&v) {
                Err(e) => r.problema(format!("exchange {seq}: {e}")),
                Ok((ex, raw)) => {
                    if ex.seq != seq {
                        r.problema(format!("exchange {seq}: its record says seq {}", ex.seq));
                    }
                    if let Raw::APezzi(lr, ls, _) = raw {
                        for (parte, len) in [(0u8, lr), (1u8, ls)] {
                            if let Some(p) = self.controlla_pezzi(seq, parte, len)? {
                                r.problema(p);
                            }
                        }
                    }
                    // A request kept without its modulo's document: the modulo gives it back.
                    if let Raw::SenzaDocumento { .. } = raw {
                        if let Err(e) = self.leggi_exchange(&valore, true) {
                            r.problema(format!("exchange {seq}: {e}"));
                        }
                    }
                }
            }
        }
        // Pieces without a record: left by an exchange cut short (or still being written);
        // never read, removed by the next purge. Counted, not a problem.
        let mut corrente: Option<u64> = None;
        for kv in self.raw.iter() {
            let (k, _) = kv.map_err(be)?;
            r.conta("raw_pieces", 1);
            let Some(seq) = seq_di(&k).filter(|_| k.len() == 13) else {
                r.problema(format!("raw: key {k:?} is not a piece's"));
                continue;
            };
            if corrente != Some(seq) {
                corrente = Some(seq);
                if !self.exchanges.contains_key(&k[..8]).map_err(be)? {
                    r.conta("orphan_messages", 1);
                }
            }
        }
        // The ids index points to records.
        for kv in self.ids.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("ids", 1);
            if id_della_chiave(&k).is_none() {
                r.problema(format!(
                    "ids: key {} is not an id's (minute, then id)",
                    mostra(&k)
                ));
            }
            match seq_di(&v).filter(|_| v.len() == 8) {
                None => r.problema(format!(
                    "ids: the entry of {} is not a sequence number",
                    mostra_id(&k)
                )),
                Some(seq) => {
                    if !self.exchanges.contains_key(&v).map_err(be)? {
                        r.problema(format!(
                            "ids: {} points to exchange {seq}, which is missing",
                            mostra_id(&k)
                        ));
                    }
                }
            }
        }
        // The time index points to records, unless retention removed them (it removes the
        // record first).
        for kv in self.received.iter() {
            let (k, _) = kv.map_err(be)?;
            r.conta("received", 1);
            match (k.len() == 16).then(|| seq_di(&k[8..])).flatten() {
                None => r.problema(format!("received: key {k:?} is not a time index key")),
                Some(seq) => {
                    if primo.is_some_and(|p| seq >= p)
                        && !self.exchanges.contains_key(&k[8..]).map_err(be)?
                    {
                        r.problema(format!(
                            "received: the time index names exchange {seq}, which is missing"
                        ));
                    }
                }
            }
        }
        // The duplicate filter: entries decode; a settled one names a record, unless retention
        // removed it (records go oldest first).
        for kv in self.dup.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("dup", 1);
            if id_della_chiave(&k).is_none() {
                r.problema(format!(
                    "dup: key {} is not an id's (minute, then id)",
                    mostra(&k)
                ));
            }
            match decode_dup(&v) {
                Err(e) => r.problema(format!("dup {}: {e}", mostra_id(&k))),
                Ok(d) if d.seq == 0 => r.conta("dup_in_flight", 1),
                Ok(d) => {
                    if primo.is_some_and(|p| d.seq >= p)
                        && !self
                            .exchanges
                            .contains_key(d.seq.to_be_bytes())
                            .map_err(be)?
                    {
                        r.problema(format!(
                            "dup {}: settled by exchange {}, which is missing",
                            mostra_id(&k),
                            d.seq
                        ));
                    }
                }
            }
        }
        // The network's trees and partners decode.
        for kv in self.moduli.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("moduli", 1);
            let v = match self.modulo_intero(&k, &v) {
                Ok(v) => v,
                Err(e) => {
                    r.problema(e.to_string());
                    continue;
                }
            };
            match super::codec::decodifica_modulo(&v) {
                Err(e) => r.problema(format!("modulo {}: {e}", mostra(&k))),
                Ok(m) if format!("{}/{}", m.kind.as_str(), m.code).as_bytes() != &k[..] => r
                    .problema(format!(
                        "modulo {}: its record says {}/{}",
                        mostra(&k),
                        m.kind.as_str(),
                        m.code
                    )),
                Ok(m) => {
                    if let Some(p) = self.sommario_diverso(&k, &m)? {
                        r.problema(format!("modulo {}: {p}", mostra(&k)));
                    }
                }
            }
        }
        for kv in self.sommari.iter() {
            let (k, _) = kv.map_err(be)?;
            r.conta("sommari", 1);
            if !self.moduli.contains_key(&k).map_err(be)? {
                r.problema(format!("summary {}: its modulo is missing", mostra(&k)));
            }
        }
        for kv in self.outbox.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("outbox", 1);
            match serde_json::from_slice::<Forward>(&v) {
                Err(e) => r.problema(format!("outbox entry {:?}: {e}", seq_di(&k))),
                Ok(i) if i.seq.to_be_bytes()[..] != k[..] => r.problema(format!(
                    "outbox entry {:?}: its record says seq {}",
                    seq_di(&k),
                    i.seq
                )),
                Ok(_) => {}
            }
        }
        for kv in self.partners.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("partners", 1);
            if let Err(e) = serde_json::from_slice::<crate::registry::Soggetto>(&v) {
                r.problema(format!("partner {}: {e}", mostra(&k)));
            }
        }
        for (nome, albero) in [
            ("contatti", &self.contatti),
            ("eures", &self.eures),
            ("utenti", &self.users),
            ("rapporti", &self.rapporti),
            ("intermediari", &self.intermediari),
            ("diagnostici", &self.diagnostici),
        ] {
            for kv in albero.iter() {
                let (k, v) = kv.map_err(be)?;
                r.conta(nome, 1);
                if let Err(e) = serde_json::from_slice::<serde_json::Value>(&v) {
                    r.problema(format!("{nome} {}: {e}", mostra(&k)));
                }
            }
        }
        // Identificatore counters: one per soggetto, porta and minute, within seven digits.
        for kv in self.counters.iter() {
            let (k, v) = kv.map_err(be)?;
            r.conta("id_counters", 1);
            let chiave = mostra(&k);
            let minuto = chiave.len().checked_sub(16).and_then(|i| chiave.get(i..));
            if minuto
                .and_then(|m| chrono::NaiveDateTime::parse_from_str(m, "%Y-%m-%d_%H:%M").ok())
                .is_none()
            {
                r.problema(format!(
                    "id counter {chiave}: the key does not end with a minute"
                ));
            }
            match contatore(&v) {
                Some(n) if n <= CONTATORE_MAX => {}
                Some(n) => r.problema(format!("id counter {chiave}: {n} is past {CONTATORE_MAX}")),
                None => r.problema(format!("id counter {chiave}: {} bytes", v.len())),
            }
        }
        // Sequence numbers: the next one is above all in use.
        if let Some(v) = self.cura.meta.get(SEQ_BASE).map_err(be)? {
            if v.len() != 8 {
                r.problema("meta seq_base: not a sequence number".into());
            }
        }
        let tetto = self.tetto()?;
        let prossimo = self.seq_base_libero()?;
        if prossimo <= tetto {
            r.problema(format!(
                "sequence numbers: the next is {prossimo}, but {tetto} is already in use"
            ));
        }
        r.millis = t0.elapsed().as_millis() as u64;
        Ok(r)
    }

    /// Retention behind [`crate::store::Store::purge`]. Exchanges go oldest first (in sequence
    /// order), up to the first one received inside the window: the ids entries that point to
    /// them first, then the record, then the raw pieces of every sequence number up to the
    /// last removed (so pieces left by an exchange cut short go too). A crash in between
    /// leaves nothing a reader trips on, and the next purge finishes the work. Settled
    /// duplicate-filter entries go when both first seen before the window and past their
    /// busta's expiry; claims in flight stay.
    pub(super) fn purga(&self, l: &PurgeLimits) -> Result<PurgeReport> {
        let _cura = self.cura.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut r = PurgeReport::default();
        if let Some(prima) = l.exchanges_before_ms {
            let mut ultimo: Option<u64> = None;
            for kv in self.exchanges.iter() {
                let (k, v) = kv.map_err(be)?;
                let Some(seq) = seq_di(&k).filter(|_| k.len() == 8) else {
                    r.stopped = Some(format!("exchanges: key {k:?}"));
                    break;
                };
                let ricevuto = self
                    .dal_registro(&v)
                    .and_then(|v| decode_exchange(&svela(&v)?).map(|(ex, _)| ex))
                    .map(|ex| {
                        let t = ex.received_ms();
                        (ex, t)
                    });
                let (ex, t) = match ricevuto {
                    Ok(x) => x,
                    Err(e) => {
                        // Its age is unknown: keep it, and everything after it.
                        r.stopped = Some(format!("exchange {seq}: {e}"));
                        break;
                    }
                };
                if t >= prima {
                    break;
                }
                for id in [&ex.request_id, &ex.response_id].into_iter().flatten() {
                    if self
                        .ids
                        .compare_and_swap(chiave_id(id), Some(&k[..]), None as Option<&[u8]>)
                        .map_err(be)?
                        .is_ok()
                    {
                        r.ids += 1;
                    }
                }
                self.exchanges.remove(&k).map_err(be)?;
                self.received
                    .remove(super::codec::chiave_ricevuto(t, seq))
                    .map_err(be)?;
                r.exchanges += 1;
                ultimo = Some(seq);
            }
            if let Some(ultimo) = ultimo {
                let fine = (ultimo + 1).to_be_bytes();
                let mut lotti = ALotti::new(&self.raw);
                for kv in self.raw.range(..&fine[..]) {
                    let (k, _) = kv.map_err(be)?;
                    lotti.togli(k)?;
                    r.raw_pieces += 1;
                }
                lotti.fine()?;
            }
        }
        // Pieces of large moduli that no marker points to any more (earlier versions, or left
        // by a crash before their marker was written).
        {
            // Writers of moduli hold the index while they write pieces and marker: holding it
            // here, no piece is judged between its writing and its marker's.
            let _indice = self.indice.write().unwrap_or_else(|e| e.into_inner());
            let mut lotti = ALotti::new(&self.moduli_pezzi);
            let mut corrente: Option<(Vec<u8>, bool)> = None;
            for kv in self.moduli_pezzi.iter() {
                let (k, _) = kv.map_err(be)?;
                // moduli key | 0 | version | n
                let Some(cut) = k.len().checked_sub(13).filter(|c| k.get(*c) == Some(&0)) else {
                    continue;
                };
                let testa = &k[..cut + 9];
                let vivo = match &corrente {
                    Some((t, vivo)) if t.as_slice() == testa => *vivo,
                    _ => {
                        let versione =
                            u64::from_be_bytes(k[cut + 1..cut + 9].try_into().unwrap_or_default());
                        let vivo = self
                            .moduli
                            .get(&k[..cut])
                            .map_err(be)?
                            .and_then(|v| super::codec::segnaposto(&v))
                            .is_some_and(|(v, _)| v == versione);
                        corrente = Some((testa.to_vec(), vivo));
                        vivo
                    }
                };
                if !vivo {
                    lotti.togli(k)?;
                    r.moduli_pieces += 1;
                }
            }
            lotti.fine()?;
        }
        // Diagnostic messages go with the exchanges: keyed by time, oldest first.
        if let Some(prima) = l.exchanges_before_ms {
            let albero = &self.diagnostici;
            let mut lotti = ALotti::new(albero);
            for kv in albero.iter() {
                let (k, _) = kv.map_err(be)?;
                match ms_del_diagnostico(&k) {
                    Some(t) if t >= prima => break,
                    Some(_) => {}
                    // Not one of ours: left alone.
                    None => continue,
                }
                lotti.togli(k)?;
                r.diagnostici += 1;
            }
            lotti.fine()?;
        }
        // Segments free up as the exchanges in them go (the moduli in them are rewritten in
        // the meantime, or kept): looked for when the purge removed some, not at every purge —
        // it reads every record's and modulo's pointer (2-3 s of CPU on a million exchanges,
        // which a purge at start would take from the first requests).
        if r.exchanges > 0 {
            r.log_segments = self.raccogli_segmenti()?;
        }
        if let Some(prima) = l.dup_before_ms {
            // Keys begin with the minute the id names (the sender's clock, local time): from
            // the oldest up to a day after the cut, the rest cannot have been first seen before
            // it unless the sender's clock runs a day ahead (those go at a later purge); then
            // the ids not of the standard's form.
            let fino_a = chrono::DateTime::from_timestamp_millis(prima.saturating_add(86_400_000))
                .map(|t| inizio_ids(&t.format("%Y-%m-%d_%H:%M").to_string()))
                .unwrap_or_else(|| IDS_FUORI_FORMA.to_vec());
            let vecchie = self.dup.range(..fino_a);
            let fuori_forma = self.dup.range(IDS_FUORI_FORMA..);
            for kv in vecchie.chain(fuori_forma) {
                let (k, v) = kv.map_err(be)?;
                let Ok(d) = decode_dup(&v) else { continue };
                if d.seq != 0
                    && d.first_ms < prima
                    && d.scade_ms.is_none_or(|s| s < l.expired_before_ms)
                    // Unless it changed meanwhile (a repeat counted).
                    && self
                        .dup
                        .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)
                        .map_err(be)?
                        .is_ok()
                {
                    r.dup += 1;
                }
            }
        }
        Ok(r)
    }
}

impl Engine {
    /// Removes the log's segments no record or modulo points into any more, among those wholly
    /// before the checkpoint (the ones after it are applied again at open). What the purge
    /// removed is made durable first: a crash must not bring back a pointer into a removed
    /// segment.
    pub(super) fn raccogli_segmenti(&self) -> Result<u64> {
        let Some(da) = self.cura.meta.get(registro::DA).map_err(be)? else {
            return Ok(0);
        };
        let da = registro::Posizione::di(&da)
            .ok_or_else(|| StoreError::corrupt("meta: the log's checkpoint"))?;
        let elenco = self
            .segmenti
            .elenco()
            .map_err(|e| StoreError::io("listing the log's segments", e))?;
        if !elenco.iter().any(|(s, _)| *s < da.seg) {
            return Ok(0);
        }
        self.db.flush().map_err(be)?;
        // Per segment: the bytes still pointed to, and whether an exchange's record is among
        // them; the moduli in segments before the checkpoint, to move them if need be.
        let mut vivi: std::collections::HashMap<u32, (u64, bool)> = Default::default();
        let mut moduli = Vec::new();
        for (t, scambi) in [(&self.exchanges, true), (&self.moduli, false)] {
            for kv in t.iter() {
                let (k, v) = kv.map_err(be)?;
                if let Some((p, _)) = registro::Puntatore::di(&v) {
                    let e = vivi.entry(p.seg).or_default();
                    e.0 += u64::from(p.len);
                    e.1 |= scambi;
                    if !scambi && p.seg < da.seg {
                        moduli.push((p.seg, k, v));
                    }
                }
            }
        }
        // Segments with no exchange left and under a quarter of them live: their moduli (a
        // modulo lives on, deactivated, after its exchanges are purged; left where they are,
        // they would keep every segment) are written again at the log's end, then nothing
        // points into those segments.
        let da_spostare: std::collections::HashSet<u32> = elenco
            .iter()
            .filter(|(seg, len)| {
                *seg < da.seg
                    && vivi
                        .get(seg)
                        .is_some_and(|(vivo, scambi)| !scambi && *vivo * 4 < *len)
            })
            .map(|(seg, _)| *seg)
            .collect();
        let mut spostati = 0u64;
        for lotto in moduli
            .iter()
            .filter(|(seg, _, _)| da_spostare.contains(seg))
            .collect::<Vec<_>>()
            .chunks(LOTTO)
        {
            let mut voce = super::journal::Voce::default();
            for (_, k, v) in lotto {
                let Some((p, _)) = registro::Puntatore::di(v) else {
                    continue;
                };
                voce.sposta_registro(albero::MODULI, k, v, &self.segmenti.leggi(&p)?);
                spostati += 1;
            }
            self.commit.scrivi_bloccando(super::commit::Voce {
                byte: voce.chiudi(),
                indice: Vec::new(),
                saldata: None,
            })?;
        }
        if spostati > 0 {
            tracing::info!(
                moduli = spostati,
                segments = da_spostare.len(),
                "store: moduli moved to the log's end, out of segments mostly dead"
            );
        }
        let mut tolti = 0;
        for (seg, len) in elenco {
            if seg < da.seg && (!vivi.contains_key(&seg) || da_spostare.contains(&seg)) {
                self.segmenti
                    .togli(seg)
                    .map_err(|e| StoreError::io(format!("removing the log's segment {seg}"), e))?;
                tracing::info!(
                    segment = seg,
                    bytes = len,
                    "store: a segment of the log removed: nothing points into it"
                );
                tolti += 1;
            }
        }
        if tolti > 0 {
            registro::sincronizza_dir(self.segmenti.dir())
                .map_err(|e| StoreError::io("syncing the log's directory", e))?;
        }
        Ok(tolti)
    }

    /// Copies the log's segments into the backup in `dest`, after its trees (so every pointer
    /// the trees hold lies in what is copied), and sets the copy's checkpoint at their end.
    fn copia_registro(&self, dest: &Path, meta: &sled::Tree) -> Result<u64> {
        let io = |what: String| move |e| StoreError::io(what, e);
        let elenco = self
            .segmenti
            .elenco()
            .map_err(io("listing the log's segments".into()))?;
        let dir = dest.join(registro::DIR);
        std::fs::create_dir_all(&dir).map_err(io(format!("cannot create {}", dir.display())))?;
        let mut n = 0;
        let mut fine = None;
        for (seg, _) in elenco {
            let a = dir.join(self.segmenti.path(seg).file_name().unwrap_or_default());
            let len = std::fs::copy(self.segmenti.path(seg), &a)
                .map_err(io(format!("copying the log's segment {seg}")))?;
            std::fs::File::open(&a)
                .and_then(|f| f.sync_all())
                .map_err(io(format!("syncing {}", a.display())))?;
            n += len;
            fine = Some(registro::Posizione { seg, off: len });
        }
        registro::sincronizza_dir(&dir).map_err(io(format!("syncing {}", dir.display())))?;
        if let Some(fine) = fine {
            meta.insert(registro::DA, &fine.codifica()[..])
                .map_err(be)?;
        }
        Ok(n)
    }
}

/// Writes a backup's manifest into it, last (a directory without one is not a finished
/// backup), durably.
pub(super) fn scrivi_manifest(dest: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = dest.join(format!("{MANIFEST}.tmp"));
    let io = |e: std::io::Error| StoreError::io(dest.display().to_string(), e);
    let mut testo = serde_json::to_vec_pretty(manifest).unwrap_or_default();
    testo.push(b'\n');
    std::fs::write(&tmp, testo).map_err(io)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(io)?;
    std::fs::rename(&tmp, dest.join(MANIFEST)).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dest) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ex as esempio, quando, tmp as tmp_store};
    use super::super::SledStore;
    use super::*;
    use crate::clock::SystemClock;
    use crate::egov::diagnostico::{Diagnostico, Severita};
    use crate::store::{Claim, Contatore, Contatto, Exchange, Store, Write};

    fn tmp(name: &str) -> std::path::PathBuf {
        tmp_store(&format!("cura-{name}"))
    }

    /// The store tests' exchange, at `t`, with a request of `len` bytes.
    fn ex(seq: u64, id: &str, t: DateTime<FixedOffset>, len: usize) -> Exchange {
        Exchange {
            received_at: t,
            answered_at: Some(t),
            request: crate::store::sled_store::tests::casuali(len, seq),
            response: b"<r/>".to_vec(),
            ..esempio(seq, id)
        }
    }

    const C: Contatore<'static> = Contatore {
        cod_amm: "X",
        cod_pdd: "XSPCoopIT",
        minuto: "2024-01-01_00:00",
        nodo: None,
    };

    #[tokio::test]
    async fn a_backup_opens_whole_and_never_reuses_a_sequence_number() {
        let (p, b) = (tmp("src"), tmp("bk"));
        let s = SledStore::open(&p).unwrap();
        let mut seqs = Vec::new();
        for i in 0..5 {
            let seq = s.next_seq().await.unwrap();
            let id = format!("A{i}");
            assert_eq!(s.claim(&id, 1, None).await.unwrap(), Claim::New);
            s.put_exchange(&ex(
                seq,
                &id,
                quando("2024-01-01T00:00:00+00:00"),
                3 * PEZZO + 7,
            ))
            .await
            .unwrap();
            s.settle(&id, seq).await.unwrap();
            seqs.push(seq);
        }
        assert_eq!(s.claim("INFLIGHT", 1, None).await.unwrap(), Claim::New);
        s.reserve_ids(C, 1000, 9_999_999).await.unwrap();
        let m = s.backup(&b, &SystemClock).await.unwrap();
        assert_eq!(m.trees["exchanges"], 5);
        assert_eq!(m.trees["received"], 5);
        assert_eq!(m.trees["dup"], 5);
        assert_eq!(m.skipped_in_flight, 1);
        assert!(!m.finished.is_empty());
        assert!(b.join(MANIFEST).exists());
        // Once more into the same place: refused.
        assert!(matches!(
            s.backup(&b, &SystemClock).await,
            Err(StoreError::Invalid(_))
        ));

        let c = SledStore::open(&b).unwrap();
        let r = c.check().await.unwrap();
        assert!(r.ok(), "{r:?}");
        assert!(c.next_seq().await.unwrap() > *seqs.iter().max().unwrap());
        assert_eq!(
            c.exchange_by_id("RA3")
                .await
                .unwrap()
                .unwrap()
                .request
                .len(),
            3 * PEZZO + 7
        );
        // The counters of the store replaced come over where higher.
        s.reserve_ids(C, 1000, 9_999_999).await.unwrap();
        assert_eq!(c.eredita_da(&s).unwrap(), 1);
        assert_eq!(c.reserve_ids(C, 1000, 9_999_999).await.unwrap(), 2001);
        drop(c);

        // A copy made without the floor (sled's export and import) is lifted at open.
        let e = tmp("export");
        {
            let raw = sled::open(&e).unwrap();
            raw.import(s.m().unwrap().db.export());
            raw.flush().unwrap();
        }
        let r = SledStore::open_waiting(&e, std::time::Duration::from_secs(5)).unwrap();
        assert!(r.next_seq().await.unwrap() > *seqs.iter().max().unwrap());
        drop((r, s));
        for d in [p, b, e] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    #[tokio::test]
    async fn purge_takes_old_exchanges_and_expired_duplicates_only() {
        let p = tmp("purge");
        let s = SledStore::open(&p).unwrap();
        let giorno = 86_400_000i64;
        let ora = 100 * giorno;
        let t = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap().fixed_offset();
        // Old (40 days), old again, recent (2 days).
        let mut recente = 0;
        for (i, eta) in [40, 35, 2].into_iter().enumerate() {
            let seq = s.next_seq().await.unwrap();
            let id = format!("E{i}");
            s.claim(
                &id,
                ora - eta * giorno,
                Some(ora - eta * giorno + 5 * giorno),
            )
            .await
            .unwrap();
            s.put_exchange(&ex(seq, &id, t(ora - eta * giorno), PEZZO + 1))
                .await
                .unwrap();
            s.settle(&id, seq).await.unwrap();
            recente = seq;
        }
        // Orphan pieces of an exchange cut short before the recent one.
        s.m()
            .unwrap()
            .raw
            .insert(super::super::codec::chiave_pezzo(1, 0, 0), &b"x"[..])
            .unwrap();
        // Seen 10 days ago, but its busta has a Scadenza next month: kept.
        s.claim("LUNGA", ora - 10 * giorno, Some(ora + 30 * giorno))
            .await
            .unwrap();
        s.settle("LUNGA", recente).await.unwrap();
        // In flight: kept.
        s.claim("INFLIGHT", ora - 10 * giorno, None).await.unwrap();
        let contatto = Contatto {
            codice: "X".into(),
            tipo: "03".into(),
            ricevuto: String::new(),
            kind: crate::modulo::Tipo::Candidatura,
            riferimento: "C".into(),
            da: serde_json::Value::Null,
            per: serde_json::Value::Null,
            testo: String::new(),
            via: None,
        };
        s.apply(vec![Write::Contatto(contatto)]).await.unwrap();
        let r = s
            .purge(&PurgeLimits {
                exchanges_before_ms: Some(ora - 30 * giorno),
                dup_before_ms: Some(ora - 5 * giorno),
                expired_before_ms: ora,
            })
            .await
            .unwrap();
        assert_eq!((r.exchanges, r.ids, r.dup), (2, 4, 2), "{r:?}");
        // The messages are in the log's records; only the orphan piece was in the tree.
        assert_eq!(r.raw_pieces, 1, "{r:?}");
        assert!(s.exchange_by_id("E0").await.unwrap().is_none());
        assert!(s.exchange_by_id("RE2").await.unwrap().is_some());
        assert_eq!(
            s.exchanges_between(None, None)
                .await
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![recente],
            "the time index follows"
        );
        for (id, atteso) in [
            ("E2", false),
            ("LUNGA", false),
            // Not purged, but left in flight for days: a new claim takes it over.
            ("INFLIGHT", true),
            ("E0", true),
        ] {
            assert_eq!(
                s.claim(id, ora, None).await.unwrap() == Claim::New,
                atteso,
                "{id}"
            );
        }
        assert_eq!(s.contatti().await.unwrap().len(), 1);
        let c = s.check().await.unwrap();
        assert!(c.ok(), "{c:?}");
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }

    #[tokio::test]
    async fn diagnostics_go_with_the_exchanges_retention() {
        let p = tmp("purge-diag");
        let s = SledStore::open(&p).unwrap();
        let giorno = 86_400_000i64;
        let ora = 100 * giorno;
        for eta in [40, 31, 29, 1] {
            let mut d = Diagnostico::new(Severita::InfoIntegration, "Avvio", "PDD_AVVIO", "x");
            d.ora = DateTime::from_timestamp_millis(ora - eta * giorno)
                .unwrap()
                .fixed_offset();
            s.apply(vec![Write::Diagnostico(d)]).await.unwrap();
        }
        let limiti = |exchanges_before_ms| PurgeLimits {
            exchanges_before_ms,
            dup_before_ms: None,
            expired_before_ms: ora,
        };
        // Retention off: all kept.
        assert_eq!(s.purge(&limiti(None)).await.unwrap().diagnostici, 0);
        let r = s.purge(&limiti(Some(ora - 30 * giorno))).await.unwrap();
        assert_eq!(r.diagnostici, 2, "{r:?}");
        assert_eq!(r.removed(), 2);
        let rimasti = s.diagnostici(None, None).await.unwrap();
        assert_eq!(rimasti.len(), 2);
        assert!(rimasti.iter().all(|d| d.ms() >= ora - 30 * giorno));
        let c = s.check().await.unwrap();
        assert!(c.ok(), "{c:?}");
        assert_eq!(c.counts.get("diagnostici"), Some(&2));
        drop(s);
        let _ = std::fs::remove_dir_all(&p);
    }
}
