//! The embedded engine: sled, one process, one directory. Each write is one entry of a
//! write-ahead journal ([`journal`]), made durable by a group commit and then applied to sled's
//! trees in the journal's order ([`commit`]); reads answer from sled's cache or disk without
//! leaving the calling task (they take microseconds); backups, checks and purges run on tokio's
//! blocking threads.

mod care;
mod codec;
mod commit;
mod indice;
mod journal;
mod registro;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use async_trait::async_trait;

use self::codec::{albero, be, decodifica};
use super::{
    care as cura, Claim, Contatore, Contatto, DupEntry, Exchange, FiltroSommari, Forward, Pagina,
    Result, Scambio, Scelta, Sommario, Store, StoreError, StoredModulo, User, VistaSommario, Write,
};
use crate::clock::Clock;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::ricerca::scegli;
use crate::modulo::Tipo;
use crate::registry::Soggetto;

/// The summaries of the moduli, by kind and code, packed ([`indice::Compatto`]): loaded at
/// open, kept in step by every write of a modulo. A set, ordered and found by the code each
/// summary holds, so the code is not kept a second time.
type Index = HashMap<Tipo, BTreeSet<indice::Compatto>>;

/// The sled store. Cheap to clone (one shared engine).
///
/// After a write or a flush fails on I/O (a full disk), sled refuses every later write until
/// it is opened again, and what it holds in memory is no longer what is on disk. The store then
/// puts its engine aside and opens the files again, retrying until it can (the disk has room
/// again): what was made durable is all there, what was not — the exchanges told they failed —
/// is gone, and the node goes on by itself. Meanwhile every operation fails as unavailable
/// (EGOV_IT_300, HTTP 503) and [`Store::avviso`] says why.
#[derive(Clone)]
pub struct SledStore {
    c: Arc<Custode>,
}

/// The engine in service (none while it is reopened), and what reopening needs.
struct Custode {
    motore: RwLock<Option<Arc<Engine>>>,
    path: std::path::PathBuf,
    opzioni: Opzioni,
    /// Why the engine is out of service, while it is.
    guasto: Mutex<Option<String>>,
    /// A thread is reopening the engine.
    in_ripresa: std::sync::atomic::AtomicBool,
    /// How long to keep trying before the process gives up (exits for its supervisor to
    /// restart it); None: keep trying.
    entro: Mutex<Option<std::time::Duration>>,
    /// Reopenings done (for `/metrics` and tests).
    riaperture: AtomicU64,
}

/// The exit status of a process whose store could not be reopened in time.
pub const EXIT_STORE_PERDUTO: i32 = 3;

/// The engine behind [`SledStore`].
struct Engine {
    db: sled::Db,
    exchanges: sled::Tree,
    ids: sled::Tree,
    received: sled::Tree,
    dup: sled::Tree,
    counters: sled::Tree,
    moduli: sled::Tree,
    moduli_pezzi: sled::Tree,
    sommari: sled::Tree,
    partners: sled::Tree,
    raw: sled::Tree,
    outbox: sled::Tree,
    eures: sled::Tree,
    users: sled::Tree,
    rapporti: sled::Tree,
    intermediari: sled::Tree,
    contatti: sled::Tree,
    diagnostici: sled::Tree,
    /// Shared with the commit thread, which keeps it in step with the writes it applies.
    indice: Arc<RwLock<Index>>,
    /// The log's segments, where the exchanges' records and the moduli are read from.
    segmenti: Arc<registro::Segmenti>,
    /// Claims in flight, by their `dup` key: kept in memory only, since an open drops those a
    /// process left anyway; a claim reaches the filter's tree once settled, with its exchange
    /// (one write of sled's instead of two per exchange, and none on the request's path).
    in_volo: Mutex<HashMap<Vec<u8>, DupEntry>>,
    /// One process holds a sled store: its leases live in memory.
    leases: crate::store::LeaseLocali,
    stripes: crate::store::StripeModuli,
    /// What backup, check and retention need (see [`care`]).
    cura: care::CareState,
    /// The journal's writes and sync shared by the writers waiting for them (declared last:
    /// dropped, with its final checkpoint, after the trees).
    commit: commit::GroupCommit,
}

/// sled's page cache, for the tools that open the store (`[store] cache_mb` for `pdd serve`).
/// 4 MiB: with the records and moduli in the log, sled's nodes hold small entries, whose
/// memory sled undercounts: at 16 MiB the process was 24 MB larger than at 8, and at 8 about
/// 10 MB larger than at 4 (1 KB at c=256), for no gain in speed. sled splits its cache into
/// 256 shards by page: at 1 MiB (4 KiB a shard) a hot page no longer stays and the CPU per
/// exchange grew by a fifth (docs/performance.md).
const CACHE_BYTES: u64 = 4 * 1024 * 1024;

/// How the files are opened.
#[derive(Debug, Clone, Copy)]
pub struct Opzioni {
    /// sled's page cache, in bytes (`[store] cache_mb`).
    pub cache: u64,
    /// A store created now compresses what it writes (zstd, `[store] compression`, off by
    /// default: sled makes a zstd context for every record it logs, which doubles the CPU of an
    /// exchange). A store that exists keeps the choice it was made with (sled records it in its
    /// `conf`).
    pub comprimi: bool,
    /// The size of the segments of sled's log for a store created now ([`SEGMENTO`]); a store
    /// that exists keeps its own (sled refuses another).
    pub segmento: usize,
}

impl Default for Opzioni {
    fn default() -> Self {
        Opzioni {
            cache: CACHE_BYTES,
            comprimi: false,
            segmento: SEGMENTO,
        }
    }
}

/// The segments of sled's log for a new store: 2 MiB, not sled's 512 KiB. Each time sled
/// closes a segment it walks its table of every segment of the log, a cost that grows with the
/// square of the store's size over the segment's (`SegmentAccountant::stabilize`: 2.2 % of the
/// CPU with 1.4 million exchanges stored in 7.6 GB, 11.6 % in an older store of 19 GB): segments 4 times
/// larger are 4 times fewer, walked 4 times less often. Not larger: sled allocates each of its
/// I/O buffers at the segment's size, and 8 MiB made the process 30–60 MB larger
/// (docs/performance.md).
pub const SEGMENTO: usize = 2 << 20;

/// A parameter of the `conf` sled keeps in the store in `path`; None when there is no store yet
/// (or its `conf` cannot be read: sled's open then says what is wrong).
fn parametro<T: std::str::FromStr>(path: &Path, nome: &str) -> Option<T> {
    let conf = std::fs::read(path.join("conf")).ok()?;
    let conf = String::from_utf8_lossy(&conf);
    conf.lines()
        .find_map(|l| l.strip_prefix(nome)?.strip_prefix(": "))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether the store in `path` was made compressed; None when there is none yet.
pub fn compresso(path: &Path) -> Option<bool> {
    parametro(path, "use_compression")
}

/// The size of the segments of the log of the store in `path`; None when there is none yet.
pub fn segmento(path: &Path) -> Option<usize> {
    parametro(path, "segment_size")
}

impl SledStore {
    /// Opens (or creates) the store. Claims left in flight by a previous run are dropped: those
    /// exchanges were never answered, so the sender may retry them.
    pub fn open(path: &Path) -> Result<SledStore> {
        SledStore::open_with(path, Opzioni::default())
    }

    /// Opens the store, waiting up to `wait` while another holder (a gateway that is exiting,
    /// or a store just dropped in this process, whose flusher thread lets go a moment later)
    /// keeps its lock.
    pub fn open_waiting(path: &Path, wait: std::time::Duration) -> Result<SledStore> {
        SledStore::open_waiting_with(path, wait, Opzioni::default())
    }

    /// [`SledStore::open_waiting`] with the cache and compression of `[store]`.
    pub fn open_waiting_with(
        path: &Path,
        wait: std::time::Duration,
        opzioni: Opzioni,
    ) -> Result<SledStore> {
        let until = std::time::Instant::now() + wait;
        loop {
            match SledStore::open_with(path, opzioni) {
                Err(StoreError::Locked { .. }) if std::time::Instant::now() < until => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                r => return r,
            }
        }
    }

    /// Opens the files: the engine, with its indexes rebuilt.
    fn engine_at(path: &Path, opzioni: Opzioni) -> Result<Engine> {
        let comprimi = compresso(path).unwrap_or(opzioni.comprimi);
        let segmento = segmento(path).unwrap_or(opzioni.segmento);
        let db = configurazione(path, opzioni.cache, comprimi, segmento)
            .open()
            .map_err(|e| match e {
                // sled says so only in words (an io::Error of kind Other around fs2's
                // WouldBlock); this is the one place that reads them.
                sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
                    StoreError::Locked {
                        path: path.display().to_string(),
                    }
                }
                e => match be(e) {
                    StoreError::Io { source, .. } => StoreError::Io {
                        what: format!("cannot open {}", path.display()),
                        source,
                    },
                    e => e,
                },
            })?;
        let t = |n: &str| db.open_tree(n).map_err(be);
        // What a crash or a failure left in the journal, applied before anything reads.
        let alberi = journal::Alberi::apri(&db)?;
        let coda = journal::apri(&alberi, path)?;
        let segmenti = coda.segmenti.clone();
        let indice = Arc::new(RwLock::new(Index::new()));
        let commit = commit::GroupCommit::avvia(alberi, coda, indice.clone())
            .map_err(|e| StoreError::io("cannot start the commit thread", e))?;
        let m = Engine {
            exchanges: t(albero::EXCHANGES)?,
            ids: t(albero::IDS)?,
            received: t(albero::RECEIVED)?,
            dup: t(albero::DUP)?,
            counters: t(albero::COUNTERS)?,
            moduli: t(albero::MODULI)?,
            moduli_pezzi: t(albero::MODULI_PEZZI)?,
            sommari: t(albero::SOMMARI)?,
            partners: t(albero::PARTNERS)?,
            raw: t(albero::RAW)?,
            outbox: t(albero::OUTBOX)?,
            eures: t(albero::EURES)?,
            users: t(albero::USERS)?,
            rapporti: t(albero::RAPPORTI)?,
            intermediari: t(albero::INTERMEDIARI)?,
            contatti: t(albero::CONTATTI)?,
            diagnostici: t(albero::DIAGNOSTICI)?,
            indice,
            segmenti,
            in_volo: Default::default(),
            leases: Default::default(),
            stripes: Default::default(),
            cura: care::CareState {
                meta: t(albero::META)?,
                seq_base: AtomicU64::new(0),
                lock: Mutex::new(()),
                path: path.to_path_buf(),
            },
            commit,
            db,
        };
        m.alza_base()?;
        m.indicizza_ricevuti()?;
        m.riordina_chiavi_id()?;
        let mut stale = Vec::new();
        for kv in m.dup.iter() {
            let (k, v) = kv.map_err(be)?;
            if codec::decode_dup(&v)?.seq == 0 {
                stale.push(k);
            }
        }
        for k in stale {
            m.dup.remove(k).map_err(be)?;
        }
        m.carica_indice()?;
        Ok(m)
    }

    fn open_with(path: &Path, opzioni: Opzioni) -> Result<SledStore> {
        let m = SledStore::engine_at(path, opzioni)?;
        Ok(SledStore {
            c: Arc::new(Custode {
                motore: RwLock::new(Some(Arc::new(m))),
                path: path.to_path_buf(),
                opzioni,
                guasto: Mutex::new(None),
                in_ripresa: Default::default(),
                entro: Mutex::new(None),
                riaperture: AtomicU64::new(0),
            }),
        })
    }

    /// The engine in service, or why there is none now.
    fn m(&self) -> Result<Arc<Engine>> {
        match &*self.c.motore.read().unwrap_or_else(|e| e.into_inner()) {
            Some(m) => Ok(m.clone()),
            None => Err(StoreError::Unavailable(format!(
                "the store is being reopened after a failed write ({})",
                self.c
                    .guasto
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_deref()
                    .unwrap_or("?")
            ))),
        }
    }

    /// How long the store keeps trying to reopen itself after a failed write before the
    /// process exits with [`EXIT_STORE_PERDUTO`] (`pdd serve`: `[store] recover_within_secs`).
    pub fn arrenditi_dopo(&self, entro: std::time::Duration) {
        *self.c.entro.lock().unwrap_or_else(|e| e.into_inner()) = Some(entro);
    }

    /// How many times the engine was reopened after a failure.
    pub fn riaperture(&self) -> u64 {
        self.c.riaperture.load(Ordering::Relaxed)
    }

    /// A write's result: an I/O failure puts the engine out of service and starts reopening
    /// it (sled refuses every write after one failed).
    fn esito<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e @ (StoreError::StorageFull(_) | StoreError::Io { .. })) = &r {
            self.guasto(e.to_string());
        }
        r
    }

    fn guasto(&self, why: String) {
        {
            let mut g = self.c.guasto.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                tracing::error!(error = %why, "store write failed: reopening the store");
                *g = Some(why);
            }
        }
        if self.c.in_ripresa.swap(true, Ordering::SeqCst) {
            return;
        }
        let c = self.c.clone();
        let avviato = std::thread::Builder::new()
            .name("pdd-ripresa".into())
            .spawn(move || riprendi(&c));
        if let Err(e) = avviato {
            tracing::error!(error = %e, "cannot start the thread that reopens the store");
            self.c.in_ripresa.store(false, Ordering::SeqCst);
        }
    }

    /// Bytes sled counts as its files' size.
    pub fn size_on_disk(&self) -> u64 {
        self.m().map_or(0, |m| m.db.size_on_disk().unwrap_or(0))
    }

    /// Takes over what must never be reused from the store this one replaces (`pdd store
    /// restore`): its Identificatore counters, where higher, and its sequence numbers. Returns
    /// how many counters were raised.
    pub fn eredita_da(&self, vecchio: &SledStore) -> Result<usize> {
        self.m()?.eredita_da(&*vecchio.m()?)
    }

    /// Runs a long operation (a backup, a check, a purge) on a blocking thread when there is a
    /// runtime, so that it holds up no task; inline otherwise.
    async fn in_disparte<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let m = self.m()?;
        match tokio::runtime::Handle::try_current() {
            Ok(h) => h
                .spawn_blocking(move || f(&m))
                .await
                .map_err(|e| StoreError::Engine(format!("blocking task: {e}")))?,
            Err(_) => f(&m),
        }
    }
}

/// sled's configuration for the store in `path`. Compressed, the store takes about a seventh of
/// the room, and each log record costs a new zstd context and a pass (level 1): twice the CPU
/// per exchange (docs/performance.md).
fn configurazione(path: &Path, cache: u64, comprimi: bool, segmento: usize) -> sled::Config {
    let c = sled::Config::new()
        .path(path)
        .mode(sled::Mode::HighThroughput)
        .segment_size(segmento)
        // sled caches 1 GiB by default; the working set here is small (recent ids, moduli).
        .cache_capacity(cache)
        .use_compression(comprimi);
    if comprimi {
        c.compression_factor(1)
    } else {
        c
    }
}

/// Reopens a store whose engine failed: puts the engine aside (new operations wait outside),
/// lets those in flight finish, drops it — what sled had not made durable goes with it — and
/// opens the files again until it can. Gives up, exiting the process, after the time set by
/// [`SledStore::arrenditi_dopo`].
fn riprendi(c: &Custode) {
    let iniziata = std::time::Instant::now();
    let vecchio = c.motore.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(v) = vecchio {
        let fino = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&v) > 1 && std::time::Instant::now() < fino {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(v);
    }
    let mut tentativi = 0u32;
    loop {
        // Opening writes (sled's recovery leaves a new snapshot): on a disk still full it
        // would leave torn files behind. Wait for room first.
        if let Some(libero) = spazio_libero(&c.path).filter(|l| *l < SPAZIO_PER_APRIRE) {
            *c.guasto.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "waiting for free space to reopen: {} KiB free",
                libero >> 10
            ));
            let entro = *c.entro.lock().unwrap_or_else(|e| e.into_inner());
            if entro.is_some_and(|d| iniziata.elapsed() > d) {
                tracing::error!("no room to reopen the store in time: exiting for the supervisor to restart pdd");
                std::process::exit(EXIT_STORE_PERDUTO);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue;
        }
        match SledStore::engine_at(&c.path, c.opzioni) {
            Ok(m) => {
                *c.motore.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(m));
                let why = c.guasto.lock().unwrap_or_else(|e| e.into_inner()).take();
                c.riaperture.fetch_add(1, Ordering::Relaxed);
                c.in_ripresa.store(false, Ordering::SeqCst);
                tracing::warn!(
                    after_ms = iniziata.elapsed().as_millis() as u64,
                    tentativi,
                    was = why.as_deref().unwrap_or(""),
                    "store reopened: in service again"
                );
                return;
            }
            Err(e) => {
                tentativi += 1;
                if !matches!(e, StoreError::Locked { .. }) {
                    *c.guasto.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("reopening: {e}"));
                    if tentativi == 1 || tentativi % 30 == 0 {
                        tracing::warn!(error = %e, tentativi, "store not reopened yet: retrying every second");
                    }
                }
                let entro = *c.entro.lock().unwrap_or_else(|e| e.into_inner());
                if entro.is_some_and(|d| iniziata.elapsed() > d) {
                    tracing::error!(error = %e, "the store could not be reopened in time: exiting for the supervisor to restart pdd");
                    std::process::exit(EXIT_STORE_PERDUTO);
                }
                std::thread::sleep(if matches!(e, StoreError::Locked { .. }) {
                    std::time::Duration::from_millis(50)
                } else {
                    std::time::Duration::from_secs(1)
                });
            }
        }
    }
}

/// Free space the store needs before it opens its files again after a failure (sled writes a
/// snapshot as it opens, and a log segment soon after).
const SPAZIO_PER_APRIRE: u64 = 8 << 20;

/// Free bytes, for an unprivileged process, of the file system holding `path` (None: unknown).
pub fn spazio_libero(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a zeroed struct statvfs writes into.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    Some(s.f_bavail as u64 * s.f_frsize as u64)
}

/// The summaries of a kind that `filtro` selects, read in place.
fn scelti<'a>(
    indice: &'a Index,
    kind: Tipo,
    filtro: FiltroSommari<'a>,
) -> impl Iterator<Item = &'a indice::Compatto> {
    indice
        .get(&kind)
        .into_iter()
        .flat_map(|t| t.iter())
        .filter(move |v| filtro(*v))
}

/// Puts (or, with None, takes out) a modulo's summary.
fn indicizza(indice: &mut Index, kind: &Tipo, code: &str, s: Option<indice::Compatto>) {
    match s {
        Some(s) => {
            debug_assert_eq!(s.codice(), code);
            indice.entry(*kind).or_default().replace(s);
        }
        None => {
            if let Some(t) = indice.get_mut(kind) {
                t.remove(code);
            }
        }
    }
}

impl Engine {
    /// A value of `exchanges` or `moduli` as written: read from the log when sled keeps where
    /// it lies there.
    fn dal_registro<'a>(&self, v: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
        match registro::Puntatore::di(v) {
            Some((p, _)) => Ok(std::borrow::Cow::Owned(self.segmenti.leggi(&p)?)),
            None => Ok(std::borrow::Cow::Borrowed(v)),
        }
    }

    /// A stored exchange, with its raw messages when `with_raw`.
    fn leggi_exchange(&self, valore: &[u8], with_raw: bool) -> Result<Exchange> {
        let v = self.dal_registro(valore)?;
        let v = codec::svela(&v)?;
        let (mut ex, raw) = codec::decode_exchange(&v)?;
        if with_raw {
            match raw {
                codec::Raw::SenzaDocumento {
                    request,
                    at,
                    len,
                    response,
                } => {
                    let m = registro::Puntatore::documento(valore).ok_or_else(|| {
                        StoreError::corrupt(format!(
                            "exchange {}: its record lacks its modulo's document, and no modulo is named",
                            ex.seq
                        ))
                    })?;
                    let modulo =
                        codec::decodifica_modulo(&codec::svela(&self.segmenti.leggi(&m)?)?)?;
                    ex.request = codec::con_documento(request, at, len, &modulo.xml)?;
                    ex.response = response.to_vec();
                }
                codec::Raw::Dentro(req, resp) => {
                    ex.request = req.to_vec();
                    ex.response = resp.to_vec();
                }
                codec::Raw::APezzi(lr, ls, compressi) => {
                    ex.request = self.pezzi(ex.seq, 0, lr)?;
                    ex.response = self.pezzi(ex.seq, 1, ls)?;
                    if compressi {
                        ex.request = codec::decomprimi(&ex.request)?;
                        ex.response = codec::decomprimi(&ex.response)?;
                    }
                }
            }
        }
        Ok(ex)
    }

    /// A message put back together from its pieces.
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
            return Err(StoreError::corrupt(format!(
                "exchange {seq}: a raw message has {} of its {len} bytes",
                out.len()
            )));
        }
        Ok(out)
    }

    /// A `moduli` value as it was written: read from its pieces when it is kept in pieces,
    /// decompressed.
    fn modulo_intero(&self, chiave: &[u8], v: &[u8]) -> Result<Vec<u8>> {
        if registro::Puntatore::di(v).is_some() {
            return Ok(codec::svela(&self.dal_registro(v)?)?.into_owned());
        }
        let Some((versione, len)) = codec::segnaposto(v) else {
            return Ok(codec::svela(v)?.into_owned());
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
            return Err(StoreError::corrupt(format!(
                "modulo {}: {} of its {len} bytes in pieces",
                String::from_utf8_lossy(chiave),
                out.len()
            )));
        }
        Ok(codec::svela(&out)?.into_owned())
    }

    fn leggi_modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>> {
        let key = codec::chiave_modulo(kind.as_str(), code);
        match self.moduli.get(&key).map_err(be)? {
            Some(v) => {
                let v = self.modulo_intero(&key, &v)?;
                Ok(Some(codec::decodifica_modulo(&v)?))
            }
            None => Ok(None),
        }
    }

    /// Every value of a tree (under a prefix), decoded; `salta`: leave out (and log) what does
    /// not decode instead of failing.
    fn tutti<T: serde::de::DeserializeOwned>(
        &self,
        t: &sled::Tree,
        cosa: &str,
        salta: bool,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for kv in t.iter() {
            let (k, v) = kv.map_err(be)?;
            match decodifica(cosa, &v) {
                Ok(x) => out.push(x),
                Err(e) if salta => {
                    tracing::warn!(key = ?k, error = %e, "{cosa}: unreadable entry left aside");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        match self.exchanges.get(seq.to_be_bytes()).map_err(be)? {
            Some(v) => Ok(Some(self.leggi_exchange(&v, true)?)),
            None => Ok(None),
        }
    }

    fn exchanges_between(&self, from: Option<i64>, to: Option<i64>) -> Result<Vec<Exchange>> {
        let inizio = codec::inizio_ricevuti(from.unwrap_or(i64::MIN));
        let mut out = Vec::new();
        for kv in self.received.range(&inizio[..]..) {
            let (k, _) = kv.map_err(be)?;
            if to.is_some_and(|to| k[..8] >= codec::inizio_ricevuti(to)[..]) {
                break;
            }
            // Retention removes the record before its index entry: an entry may outlive it.
            if let Some(v) = self.exchanges.get(&k[8..]).map_err(be)? {
                out.push(self.leggi_exchange(&v, false)?);
            }
        }
        Ok(out)
    }

    /// Builds the time index of exchanges stored before it existed (once: a meta flag says it
    /// is complete).
    fn indicizza_ricevuti(&self) -> Result<()> {
        const FATTO: &[u8] = b"indice_ricevuti";
        if self.cura.meta.contains_key(FATTO).map_err(be)? {
            return Ok(());
        }
        let mut lotti = care::ALotti::new(&self.received);
        let mut n = 0usize;
        for kv in self.exchanges.iter() {
            let (k, v) = kv.map_err(be)?;
            let Ok(ricevuto) = codec::ricevuto_di(&v) else {
                continue;
            };
            let Some(seq) = codec::seq_di(&k) else {
                continue;
            };
            lotti.metti(&codec::chiave_ricevuto(ricevuto, seq)[..], &[][..])?;
            n += 1;
        }
        lotti.fine()?;
        self.migrazione_fatta(FATTO)?;
        if n > 0 {
            tracing::info!(exchanges = n, "store: time index of exchanges built");
        }
        Ok(())
    }

    /// Builds the index of candidature and vacancies from their summaries: beside the pointer
    /// of each modulo kept in the log, in the summaries' tree for those an earlier version wrote.
    /// A store made before the summaries had their tree gets it once, from the moduli whole: in
    /// batches, then the flag, so an open cut short starts it again (each batch only rewrites
    /// summaries).
    fn carica_indice(&self) -> Result<()> {
        if !self.cura.meta.contains_key(care::SOMMARI).map_err(be)? {
            self.scrivi_sommari()?;
        }
        let mut indice = self.indice.write().unwrap_or_else(|e| e.into_inner());
        for kind in [Tipo::Candidatura, Tipo::Vacancy] {
            let prefisso = codec::chiave_modulo(kind.as_str(), "");
            let vecchi = self
                .sommari
                .scan_prefix(&prefisso)
                .map(|kv| kv.map(|(_, v)| v));
            let nuovi = self
                .moduli
                .scan_prefix(&prefisso)
                .filter_map(|kv| match kv {
                    Ok((_, v)) => registro::Puntatore::di(&v)
                        .filter(|(_, s)| !s.is_empty())
                        .map(|(_, s)| Ok(sled::IVec::from(s))),
                    Err(e) => Some(Err(e)),
                });
            for v in vecchi.chain(nuovi) {
                let v = v.map_err(be)?;
                // One that does not decode is the check's to report.
                if let Ok(s) = codec::decodifica_sommario(&v) {
                    indicizza(
                        &mut indice,
                        &kind,
                        &s.codice,
                        Some(indice::Compatto::di(&s)),
                    );
                }
            }
        }
        Ok(())
    }

    /// Writes the summaries' tree of a store made before it existed (or of a backup, which
    /// does not copy it), from the moduli whole.
    fn scrivi_sommari(&self) -> Result<()> {
        let t0 = std::time::Instant::now();
        let mut lotti = care::ALotti::new(&self.sommari);
        let mut n = 0usize;
        for kv in self.moduli.iter() {
            let (k, v) = kv.map_err(be)?;
            if registro::Puntatore::di(&v).is_some() {
                // Its summary is beside its pointer.
                continue;
            }
            let v = self.modulo_intero(&k, &v)?;
            // A record that does not decode is the check's to report; it has no summary.
            let Ok(r) = codec::decodifica_modulo(&v) else {
                continue;
            };
            let Some(s) = Sommario::di(&r) else {
                continue;
            };
            lotti.metti(k, codec::codifica_sommario(&s))?;
            n += 1;
        }
        lotti.fine()?;
        self.migrazione_fatta(care::SOMMARI)?;
        if n > 0 {
            tracing::info!(
                moduli = n,
                millis = t0.elapsed().as_millis() as u64,
                "store: summaries of the moduli written in their own tree (once)"
            );
        }
        Ok(())
    }

    fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32> {
        let key = codec::chiave_contatore(&c);
        let mut first = 0u32;
        let mut exhausted = false;
        self.counters
            .fetch_and_update(&key, |old| {
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
            return Err(StoreError::Exhausted(String::from_utf8_lossy(&key).into()));
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
        let chiave = codec::chiave_id(id);
        // Held across the look into the tree: two claims of one id never both find it free.
        let mut in_volo = self.in_volo.lock().unwrap_or_else(|e| e.into_inner());
        let abbandonata =
            |d: &DupEntry| d.seq == 0 && d.first_ms < now_ms - crate::store::ABBANDONO_MS;
        if let Some(d) = in_volo.get(&chiave) {
            // Left in flight by a task that never finished: taken over.
            if !abbandonata(d) {
                return Ok(Claim::Duplicate(d.clone()));
            }
        } else if let Some(v) = self.dup.get(&chiave).map_err(be)? {
            let d = codec::decode_dup(&v)?;
            // A claim in the tree is one an earlier version left: taken over once abandoned.
            if !abbandonata(&d) {
                return Ok(Claim::Duplicate(d));
            }
        }
        in_volo.insert(chiave, fresh);
        Ok(Claim::New)
    }

    /// The claim in flight of `id` as its settling writes it (its `seq` set), if there is one.
    fn da_saldare(&self, id: &str, seq: u64) -> Option<(Vec<u8>, DupEntry)> {
        let chiave = codec::chiave_id(id);
        let in_volo = self.in_volo.lock().unwrap_or_else(|e| e.into_inner());
        let mut d = in_volo.get(&chiave)?.clone();
        d.seq = seq;
        Some((chiave, d))
    }

    /// A claim settled and applied leaves memory; repeats counted since its entry was written
    /// are added to the tree's.
    fn saldata(&self, chiave: &[u8], scritta: &DupEntry) -> Result<()> {
        let tolta = self
            .in_volo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(chiave);
        match tolta.map_or(0, |d| d.repeats.saturating_sub(scritta.repeats)) {
            0 => Ok(()),
            in_piu => self.ripetizioni(chiave, in_piu),
        }
    }

    /// Adds `n` repeats to the settled entry under `chiave` in the filter's tree.
    fn ripetizioni(&self, chiave: &[u8], n: u32) -> Result<()> {
        self.dup
            .fetch_and_update(chiave, |old| {
                let mut d = codec::decode_dup(old?).ok()?;
                d.repeats = d.repeats.saturating_add(n);
                Some(codec::encode_dup(&d))
            })
            .map_err(be)?;
        Ok(())
    }

    fn count_repeat(&self, id: &str) -> Result<()> {
        let chiave = codec::chiave_id(id);
        {
            let mut in_volo = self.in_volo.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(d) = in_volo.get_mut(&chiave) {
                d.repeats = d.repeats.saturating_add(1);
                return Ok(());
            }
        }
        self.ripetizioni(&chiave, 1)
    }

    fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool> {
        // Candidature and vacancies are all in the index (kept in step with every write);
        // messaggi are not.
        if kind == Tipo::Messaggio {
            return self
                .moduli
                .contains_key(codec::chiave_modulo(kind.as_str(), code))
                .map_err(be);
        }
        let indice = self.indice.read().unwrap_or_else(|e| e.into_inner());
        Ok(indice.get(&kind).is_some_and(|t| t.contains(code)))
    }

    /// The tree, key and value of one write (None: a removal).
    fn dove(w: &mut Write) -> (&'static str, Vec<u8>, Option<Vec<u8>>) {
        use codec::codifica;
        match w {
            Write::Modulo(m) => (
                albero::MODULI,
                codec::chiave_modulo(m.kind.as_str(), &m.code),
                Some(codec::comprimi(&codec::codifica_modulo(m))),
            ),
            Write::Forward(f) => (
                albero::OUTBOX,
                f.seq.to_be_bytes().to_vec(),
                Some(codifica(f)),
            ),
            Write::ForwardDone(seq) => (albero::OUTBOX, seq.to_be_bytes().to_vec(), None),
            Write::Eures(f) => (
                albero::EURES,
                codec::chiave_eures(f.kind.as_str(), &f.codice, f.seq),
                Some(codifica(f)),
            ),
            Write::Contatto(c) => (
                albero::CONTATTI,
                c.codice.as_bytes().to_vec(),
                Some(codifica(c)),
            ),
            Write::User(u) => (albero::USERS, u.nome.as_bytes().to_vec(), Some(codifica(u))),
            Write::RemoveUser(nome) => (albero::USERS, nome.as_bytes().to_vec(), None),
            Write::Rapporto(cf, r) => (albero::RAPPORTI, cf.as_bytes().to_vec(), Some(codifica(r))),
            Write::Intermediario(i) => (
                albero::INTERMEDIARI,
                i.codice_fiscale.as_bytes().to_vec(),
                Some(codifica(i)),
            ),
            Write::RemoveIntermediario(cf) => (albero::INTERMEDIARI, cf.as_bytes().to_vec(), None),
            Write::Diagnostico(d) => (
                albero::DIAGNOSTICI,
                codec::chiave_diagnostico(d.ora.timestamp_millis()),
                Some(codifica(d)),
            ),
        }
    }

    /// The journal entry of a batch and, with `scambio`, of the exchange's record, its raw
    /// pieces, its ids, its time-index entry and its settled claim: all of it applied as one.
    fn prepara(&self, batch: &mut [Write], scambio: Option<Scambio<'_>>) -> Result<commit::Voce> {
        let scritture: Vec<_> = batch.iter_mut().map(Engine::dove).collect();
        // The moduli with their summaries, for their tree and, once applied, the index.
        let moduli: Vec<(Tipo, String, Option<Sommario>)> = batch
            .iter()
            .filter_map(|w| match w {
                Write::Modulo(m) => Some((m.kind, m.code.clone(), Sommario::di(m))),
                _ => None,
            })
            .collect();
        let mut voce = journal::Voce::default();
        for (t, k, v) in &scritture {
            match v {
                Some(v) if *t == albero::MODULI => {
                    // Moduli stay in the log, whatever their size; sled gets where, and the
                    // summary of each candidatura and vacancy beside it (the index is read
                    // from there at open).
                    let sommario = batch_sommario(&moduli, k);
                    voce.put_registro(t, k, v, &sommario);
                    // One an earlier version wrote in the summaries' tree goes.
                    if self.sommari.contains_key(k).map_err(be)? {
                        voce.del(albero::SOMMARI, k);
                    }
                }
                Some(v) => voce.put(t, k, v),
                None => voce.del(t, k),
            }
        }
        let mut saldata = None;
        if let Some((ex, settle)) = scambio {
            // The record with its messages, whatever their size, in the log; without the
            // document of the modulo it stores, when that is the one modulo of the batch and
            // was written last (the record then points to it).
            let documento = match (batch, scritture.last()) {
                ([Write::Modulo(m)], Some((t, _, Some(_)))) if *t == albero::MODULI => {
                    codec::documento_nella_richiesta(&ex.request, &m.xml)
                }
                _ => None,
            };
            let record = codec::encode_exchange(ex, documento);
            voce.scambio_registro(ex.seq, ex.received_ms(), &record, documento.is_some());
            for id in [&ex.request_id, &ex.response_id].into_iter().flatten() {
                voce.id_se_manca(&codec::chiave_id(id), ex.seq);
            }
            if let Some(id) = settle {
                saldata = self.da_saldare(id, ex.seq);
                match &saldata {
                    Some((k, d)) => voce.salda_con(k, d),
                    None => voce.salda(&codec::chiave_id(id), ex.seq),
                }
            }
        }
        Ok(commit::Voce {
            byte: voce.chiudi(),
            // Packed here, not on the commit thread, which holds the index's lock to put them.
            indice: moduli
                .into_iter()
                .map(|(t, c, s)| (t, c, s.as_ref().map(indice::Compatto::di)))
                .collect(),
            saldata,
        })
    }
}

/// The summary, as sled keeps it beside the pointer, of the modulo whose key is `k` among those
/// of a batch; empty for a messaggio.
fn batch_sommario(moduli: &[(Tipo, String, Option<Sommario>)], k: &[u8]) -> Vec<u8> {
    moduli
        .iter()
        .find(|(kind, code, _)| codec::chiave_modulo(kind.as_str(), code) == k)
        .and_then(|(_, _, s)| s.as_ref())
        .map(codec::codifica_sommario)
        .unwrap_or_default()
}

impl SledStore {
    /// Writes a batch (with `scambio`, with the exchange) as one journal entry: durable and
    /// applied when this returns.
    async fn scrivi(&self, batch: &mut [Write], scambio: Option<Scambio<'_>>) -> Result<()> {
        if batch.is_empty() && scambio.is_none() {
            return Ok(());
        }
        let m = self.m()?;
        let mut voce = self.esito(m.prepara(batch, scambio))?;
        let saldata = voce.saldata.take();
        self.manda(&m, voce).await?;
        match saldata {
            Some((k, d)) => self.esito(m.saldata(&k, &d)),
            None => Ok(()),
        }
    }

    /// An entry made here, written as [`SledStore::scrivi`] writes a batch's.
    async fn scrivi_voce(&self, voce: journal::Voce) -> Result<()> {
        let m = self.m()?;
        let voce = commit::Voce {
            byte: voce.chiudi(),
            indice: Vec::new(),
            saldata: None,
        };
        self.manda(&m, voce).await
    }

    async fn manda(&self, m: &Engine, voce: commit::Voce) -> Result<()> {
        let r = m.commit.scrivi(voce).await;
        // Durable in the journal but not applied: reopening applies it.
        if let Some(e) = m.commit.guasto_alberi() {
            self.guasto(e.to_string());
        }
        self.esito(r)
    }
}

#[async_trait]
impl Store for SledStore {
    fn engine(&self) -> &'static str {
        "sled"
    }

    async fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32> {
        self.esito(self.m()?.reserve_ids(c, block, capacity))
    }

    async fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim> {
        self.esito(self.m()?.claim(id, now_ms, scade_ms))
    }

    async fn settle(&self, id: &str, seq: u64) -> Result<()> {
        // Through the journal, as an exchange's own settling: durable when it returns.
        let m = self.m()?;
        let mut voce = journal::Voce::default();
        let saldata = m.da_saldare(id, seq);
        match &saldata {
            Some((k, d)) => voce.salda_con(k, d),
            None => voce.salda(&codec::chiave_id(id), seq),
        }
        self.scrivi_voce(voce).await?;
        match saldata {
            Some((k, d)) => self.esito(m.saldata(&k, &d)),
            None => Ok(()),
        }
    }

    async fn release(&self, id: &str) -> Result<()> {
        let m = self.m()?;
        let chiave = codec::chiave_id(id);
        let in_volo = m
            .in_volo
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&chiave);
        if in_volo.is_none() {
            self.esito(m.dup.remove(chiave).map_err(be))?;
        }
        Ok(())
    }

    async fn count_repeat(&self, id: &str) -> Result<()> {
        self.esito(self.m()?.count_repeat(id))
    }

    async fn next_seq(&self) -> Result<u64> {
        // sled's generate_id is monotonic and never reused, also across crashes; the base lifts
        // it above what a copy of another store holds.
        self.esito(self.m()?.seq_base_libero())
    }

    async fn put_exchange(&self, ex: &Exchange) -> Result<()> {
        self.scrivi(&mut [], Some((ex, None))).await
    }

    async fn commit_exchange(&self, ex: &Exchange, settle: Option<&str>) -> Result<()> {
        self.scrivi(&mut [], Some((ex, settle))).await
    }

    async fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        self.m()?.exchange(seq)
    }

    async fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>> {
        match self.m()?.ids.get(codec::chiave_id(id)).map_err(be)? {
            Some(k) => match codec::seq_di(&k).filter(|_| k.len() == 8) {
                Some(seq) => self.m()?.exchange(seq),
                None => Err(StoreError::corrupt("id index")),
            },
            None => Ok(None),
        }
    }

    async fn recent(&self, limit: usize) -> Result<Vec<Exchange>> {
        let mut out = Vec::new();
        for kv in self.m()?.exchanges.iter().rev().take(limit) {
            let (_, v) = kv.map_err(be)?;
            out.push(self.m()?.leggi_exchange(&v, false)?);
        }
        Ok(out)
    }

    async fn exchanges_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Exchange>> {
        self.m()?.exchanges_between(from_ms, to_ms)
    }

    async fn modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>> {
        self.m()?.leggi_modulo(kind, code)
    }

    async fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool> {
        self.m()?.has_modulo(kind, code)
    }

    async fn moduli(&self, kind: Tipo) -> Result<Vec<StoredModulo>> {
        let mut out = Vec::new();
        let prefisso = format!("{}/", kind.as_str());
        for kv in self.m()?.moduli.scan_prefix(prefisso.as_bytes()) {
            let (k, v) = kv.map_err(be)?;
            out.push(codec::decodifica_modulo(&self.m()?.modulo_intero(&k, &v)?)?);
        }
        Ok(out)
    }

    async fn sommari(&self, kind: Tipo, filtro: FiltroSommari<'_>) -> Result<Vec<Arc<Sommario>>> {
        let m = self.m()?;
        let indice = m.indice.read().unwrap_or_else(|e| e.into_inner());
        Ok(scelti(&indice, kind, filtro)
            .map(|v| Arc::new(v.sommario()))
            .collect())
    }

    async fn sommari_in_pagina(
        &self,
        kind: Tipo,
        filtro: FiltroSommari<'_>,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<String>> {
        let m = self.m()?;
        let voci = m.indice.read().unwrap_or_else(|e| e.into_inner());
        // Ordered where they lie: only the page's codes are copied out.
        let ammessi: Vec<(i64, &indice::Compatto)> = scelti(&voci, kind, filtro)
            .map(|v| (v.aggiornata_ms(), v))
            .collect();
        let scelta = scegli(ammessi, |(ms, v)| (*ms, v.codice()), pagina, misura);
        Ok(Scelta {
            totale: scelta.totale,
            pagina: scelta
                .pagina
                .iter()
                .map(|(_, v)| v.codice().to_string())
                .collect(),
            successivo: scelta.successivo,
        })
    }

    async fn outbox(&self) -> Result<Vec<Forward>> {
        self.m()?.tutti(&self.m()?.outbox, "outbox entry", true)
    }

    async fn eures(&self) -> Result<Vec<Forward>> {
        self.m()?.tutti(&self.m()?.eures, "EURES document", false)
    }

    async fn contatti(&self) -> Result<Vec<Contatto>> {
        self.m()?.tutti(&self.m()?.contatti, "contatto", false)
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.m()?.tutti(&self.m()?.users, "user", false)
    }

    async fn user(&self, nome: &str) -> Result<Option<User>> {
        match self.m()?.users.get(nome.as_bytes()).map_err(be)? {
            Some(v) => Ok(Some(decodifica("user", &v)?)),
            None => Ok(None),
        }
    }

    async fn rapporto(&self, cf: &str) -> Result<Option<Rapporto>> {
        match self.m()?.rapporti.get(cf.as_bytes()).map_err(be)? {
            Some(v) => Ok(Some(decodifica("rapporto", &v)?)),
            None => Ok(None),
        }
    }

    async fn intermediari(&self) -> Result<Vec<Intermediario>> {
        self.m()?
            .tutti(&self.m()?.intermediari, "intermediario", false)
    }

    async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>> {
        match self.m()?.intermediari.get(cf.as_bytes()).map_err(be)? {
            Some(v) => Ok(Some(decodifica("intermediario", &v)?)),
            None => Ok(None),
        }
    }

    async fn ha_intermediari(&self) -> Result<bool> {
        Ok(!self.m()?.intermediari.is_empty())
    }

    async fn diagnostici(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Diagnostico>> {
        let inizio = codec::inizio_diagnostici(from_ms.unwrap_or(0));
        let mut out = Vec::new();
        for kv in self.m()?.diagnostici.range(inizio..) {
            let (k, v) = kv.map_err(be)?;
            let t = codec::ms_del_diagnostico(&k).unwrap_or(0);
            if to_ms.is_some_and(|to| t >= to) {
                break;
            }
            if let Ok(d) = serde_json::from_slice::<Diagnostico>(&v) {
                out.push(d);
            }
        }
        Ok(out)
    }

    async fn partners(&self) -> Result<Vec<Soggetto>> {
        self.m()?.tutti(&self.m()?.partners, "partner", false)
    }

    async fn put_partner(&self, s: &Soggetto) -> Result<()> {
        let mut voce = journal::Voce::default();
        voce.put(
            albero::PARTNERS,
            &codec::chiave_partner(&s.tipo, &s.nome),
            &codec::codifica(s),
        );
        self.scrivi_voce(voce).await
    }

    async fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool> {
        let chiave = codec::chiave_partner(tipo, nome);
        if !self.m()?.partners.contains_key(&chiave).map_err(be)? {
            return Ok(false);
        }
        let mut voce = journal::Voce::default();
        voce.del(albero::PARTNERS, &chiave);
        self.scrivi_voce(voce).await?;
        Ok(true)
    }

    async fn export(
        &self,
        sink: &(dyn Fn(crate::store::Record) -> bool + Send + Sync),
    ) -> Result<()> {
        use crate::store::Record;
        if !crate::store::esporta_comuni(self, sink).await? {
            return Ok(());
        }
        for kv in self.m()?.counters.iter() {
            let (k, v) = kv.map_err(be)?;
            let n = codec::contatore(&v).ok_or_else(|| {
                StoreError::corrupt(format!("counter {}", String::from_utf8_lossy(&k)))
            })?;
            if !sink(Record::Counter(String::from_utf8_lossy(&k).into_owned(), n)) {
                return Ok(());
            }
        }
        for kv in self.m()?.dup.iter() {
            let (k, v) = kv.map_err(be)?;
            let d = codec::decode_dup(&v)?;
            let id = codec::id_della_chiave(&k).unwrap_or((&k[..]).into());
            if !sink(Record::Dup(String::from_utf8_lossy(&id).into_owned(), d)) {
                return Ok(());
            }
        }
        for kv in self.m()?.rapporti.iter() {
            let (k, v) = kv.map_err(be)?;
            let r = codec::decodifica("rapporto", &v)?;
            if !sink(Record::Rapporto(
                String::from_utf8_lossy(&k).into_owned(),
                r,
            )) {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn lock_moduli(&self, codici: &[&str]) -> Result<crate::store::ModuliLock> {
        Ok(crate::store::ModuliLock::new(
            self.m()?.stripes.lock(codici).await,
            None,
        ))
    }

    async fn lease(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        Ok(self.m()?.leases.prendi(nome, holder, now_ms, ttl_ms))
    }

    async fn release_lease(&self, nome: &str, holder: &str) -> Result<()> {
        self.m()?.leases.rilascia(nome, holder);
        Ok(())
    }

    async fn apply(&self, mut batch: Vec<Write>) -> Result<()> {
        self.scrivi(&mut batch, None).await
    }

    async fn commit_exchange_with(
        &self,
        ex: &Exchange,
        settle: Option<&str>,
        mut batch: Vec<Write>,
    ) -> Result<()> {
        self.scrivi(&mut batch, Some((ex, settle))).await
    }

    /// Every write is durable in the journal when it returns: a flush only waits for the
    /// writes still in flight. (A checkpoint, which writes sled's files, on every flush would
    /// stall every writer each time the outbox or a health probe asks.) Outside the journal are
    /// only the duplicate filter's claims in flight, which an open drops anyway, their release
    /// and the count of repeats: sled makes them durable within its own half second.
    async fn flush(&self) -> Result<()> {
        let r = self.m()?.commit.barriera().await;
        self.esito(r)
    }

    async fn close(&self) -> Result<()> {
        let r = self.m()?.commit.checkpoint().await;
        self.esito(r)
    }

    fn avviso(&self) -> Option<String> {
        self.c
            .guasto
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|g| format!("out of service after a failed write, reopening: {g}"))
    }

    async fn summary(&self) -> Result<String> {
        self.in_disparte(|m| m.riepilogo()).await
    }

    async fn backup(&self, dest: &Path, clock: &dyn Clock) -> Result<cura::Manifest> {
        let (dest, started) = (dest.to_path_buf(), clock.now());
        let d = dest.clone();
        let mut manifest = self.in_disparte(move |m| m.copia(&d, started)).await?;
        manifest.finished = crate::clock::ora::testo(&clock.now());
        // Last: a directory without a manifest is not a finished backup.
        let scritto = manifest.clone();
        self.in_disparte(move |_| care::scrivi_manifest(&dest, &scritto))
            .await?;
        Ok(manifest)
    }

    async fn stats(&self) -> Result<cura::Stats> {
        self.in_disparte(|m| m.statistiche()).await
    }

    async fn check(&self) -> Result<cura::CheckReport> {
        self.in_disparte(|m| m.verifica()).await
    }

    async fn purge(&self, limits: &cura::PurgeLimits) -> Result<cura::PurgeReport> {
        let l = *limits;
        self.in_disparte(move |m| m.purga(&l)).await
    }
}
