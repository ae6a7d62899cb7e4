//! The PostgreSQL engine: the [`Store`] contract on a database that several `pdd` nodes share.
//!
//! Every record is a row; records are kept as their JSON bytes (`bytea`, as the other engines
//! encode them) beside the columns that are searched or ordered on (ids, times, kinds, codes).
//! Every write is one transaction, committed before the call returns: an answered exchange is
//! durable when the database has it (PostgreSQL shares one WAL flush among concurrent commits,
//! so concurrent exchanges share their commits). `flush` has nothing left to do.
//!
//! What makes several nodes one Porta di Dominio lives in the SQL: the duplicate filter is a
//! primary key (one claimant wins, whichever node it is on), Identificatore counters are
//! reserved under a row lock, sequence numbers come from one sequence.
//!
//! The schema is created and moved forward by the migrations in [`MIGRAZIONI`], applied under
//! an advisory lock (two nodes starting at once apply each one once).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod gruppo;

use async_trait::async_trait;
use deadpool_postgres::{
    Connect, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime,
};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row, Statement};

use super::care::{CheckReport, Manifest, PurgeLimits, PurgeReport, Stats, TreeStats};
use super::{
    Claim, Contatore, Contatto, Criteri, Cursore, DupEntry, Exchange, FiltroSommari, Forward,
    Pagina, Result, Scelta, Sommario, StatoModulo, Store, StoreError, StoredModulo, User, Write,
};
use crate::clock::Clock;
use crate::egov::diagnostico::Diagnostico;
use crate::modulo::intermediario::Intermediario;
use crate::modulo::rapporto::Rapporto;
use crate::modulo::scheda::Scheda;
use crate::modulo::Tipo;
use crate::registry::Soggetto;

/// The schema, in order: a migration is never edited once released, only followed by another.
/// Text keys sort bytewise (`COLLATE "C"`), as the embedded engine orders them.
pub const MIGRAZIONI: &[(u32, &str)] = &[
    (
        1,
        r#"
CREATE SEQUENCE pdd_seq;
CREATE TABLE pdd_counters (chiave text COLLATE "C" PRIMARY KEY, used bigint NOT NULL);
CREATE TABLE pdd_dup (
    id text COLLATE "C" PRIMARY KEY,
    seq bigint NOT NULL,
    first_ms bigint NOT NULL,
    repeats bigint NOT NULL DEFAULT 0,
    scade_ms bigint
);
CREATE TABLE pdd_exchanges (
    seq bigint PRIMARY KEY,
    received_ms bigint NOT NULL,
    meta bytea NOT NULL,
    request bytea NOT NULL,
    response bytea NOT NULL
);
-- Raw messages are stored as they are: compressing them costs more CPU than the disk saves.
ALTER TABLE pdd_exchanges ALTER COLUMN request SET STORAGE EXTERNAL,
    ALTER COLUMN response SET STORAGE EXTERNAL;
CREATE INDEX pdd_exchanges_received ON pdd_exchanges (received_ms, seq);
CREATE TABLE pdd_ids (id text COLLATE "C" PRIMARY KEY, seq bigint NOT NULL);
CREATE INDEX pdd_ids_seq ON pdd_ids (seq);
CREATE TABLE pdd_moduli (
    kind text COLLATE "C" NOT NULL,
    codice text COLLATE "C" NOT NULL,
    doc bytea NOT NULL,
    sommario bytea,
    PRIMARY KEY (kind, codice)
);
CREATE TABLE pdd_outbox (seq bigint PRIMARY KEY, doc bytea NOT NULL);
CREATE TABLE pdd_eures (
    kind text COLLATE "C" NOT NULL,
    codice text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    doc bytea NOT NULL,
    PRIMARY KEY (kind, codice, seq)
);
CREATE TABLE pdd_contatti (codice text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL);
CREATE TABLE pdd_users (nome text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL);
CREATE TABLE pdd_rapporti (cf text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL);
CREATE TABLE pdd_diagnostici (n bigserial PRIMARY KEY, ms bigint NOT NULL, doc bytea NOT NULL);
CREATE INDEX pdd_diagnostici_ms ON pdd_diagnostici (ms, n);
CREATE TABLE pdd_partners (
    tipo text COLLATE "C" NOT NULL,
    nome text COLLATE "C" NOT NULL,
    doc bytea NOT NULL,
    PRIMARY KEY (tipo, nome)
);
"#,
    ),
    (
        2,
        r#"
CREATE TABLE pdd_nodes (
    numero integer PRIMARY KEY,
    nome text NOT NULL,
    avviato timestamptz NOT NULL DEFAULT now(),
    pdd text NOT NULL
);
CREATE TABLE pdd_flush (id integer PRIMARY KEY, n bigint NOT NULL);
CREATE TABLE pdd_leases (
    nome text COLLATE "C" PRIMARY KEY,
    holder text NOT NULL,
    scade_ms bigint NOT NULL
);
"#,
    ),
    (
        3,
        r#"
-- What the read API searches and orders on, as columns of the modulo's row (set with every
-- write of the modulo, from its published scheda; filled here from the stored summaries).
ALTER TABLE pdd_moduli
    ADD COLUMN attivo boolean NOT NULL DEFAULT false,
    ADD COLUMN agg_ms bigint,
    ADD COLUMN giorno date,
    ADD COLUMN professioni text[] COLLATE "C",
    ADD COLUMN comune text COLLATE "C",
    ADD COLUMN provincia text COLLATE "C",
    ADD COLUMN regione text COLLATE "C",
    ADD COLUMN testo text COLLATE "C";
UPDATE pdd_moduli m SET
    attivo = s.j->>'stato' = 'attivo' AND jsonb_typeof(s.j->'scheda') = 'object',
    agg_ms = round(extract(epoch FROM (s.j->>'aggiornata')::timestamptz) * 1000)::bigint,
    giorno = left(s.j->>'aggiornata', 10)::date,
    professioni = ARRAY(SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(s.j->'scheda'->'professioni') = 'array'
             THEN s.j->'scheda'->'professioni' ELSE '[]'::jsonb END)),
    comune = s.j->'scheda'->>'comune',
    provincia = s.j->'scheda'->>'provincia',
    regione = s.j->'scheda'->>'regione',
    testo = s.j->'scheda'->>'testo'
FROM (SELECT kind, codice, convert_from(sommario, 'UTF8')::jsonb AS j
      FROM pdd_moduli WHERE sommario IS NOT NULL) s
WHERE m.kind = s.kind AND m.codice = s.codice;
CREATE INDEX pdd_moduli_pubblicati ON pdd_moduli (kind, agg_ms DESC, codice) WHERE attivo;
"#,
    ),
    (
        4,
        r#"
-- The register of accredited intermediaries (`pdd intermediari import`).
CREATE TABLE pdd_intermediari (cf text COLLATE "C" PRIMARY KEY, doc bytea NOT NULL);
"#,
    ),
];

/// The advisory lock key under which migrations run ("pdd" in ASCII, then 1).
const LOCK_MIGRAZIONI: i64 = 0x7064_6401;
/// Node numbers: this key plus the number, held by the live node that has it.
const LOCK_NODI: i64 = 0x7064_6400_0000;

/// The tables, by the names `pdd store stats` shows (those of the embedded engine's trees).
const TABELLE: &[(&str, &str)] = &[
    ("exchanges", "pdd_exchanges"),
    ("ids", "pdd_ids"),
    ("dup", "pdd_dup"),
    ("id_counters", "pdd_counters"),
    ("moduli", "pdd_moduli"),
    ("outbox", "pdd_outbox"),
    ("eures", "pdd_eures"),
    ("contatti", "pdd_contatti"),
    ("utenti", "pdd_users"),
    ("rapporti", "pdd_rapporti"),
    ("intermediari", "pdd_intermediari"),
    ("diagnostici", "pdd_diagnostici"),
    ("partners", "pdd_partners"),
];

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://user[:password]@host[:port]/db[?options]`.
    pub url: String,
    /// Connections kept open at most.
    pub pool: usize,
    /// How long an operation waits for a connection (from the pool, or a new one) before it
    /// fails as [`StoreError::Unavailable`]: an outage answers quickly instead of hanging.
    pub wait: Duration,
    /// The CA of the database server's certificate (PEM), for TLS: the URL's `sslmode`
    /// (`require`, `verify-full`…) asks for TLS, and then the server's certificate is checked
    /// against this CA and its name (rustls).
    pub ca: Option<std::path::PathBuf>,
    /// The runtime that drives the connections, when the caller's lives as long as the store
    /// (the server's): its tasks then reach the database without crossing to threads of the
    /// store's own (see [`IoRuntime`]). None: the store starts a runtime of its own.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl PgOptions {
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            pool: 16,
            wait: Duration::from_secs(3),
            ca: None,
            runtime: None,
        }
    }
}

type Tls = Option<tokio_postgres_rustls::MakeRustlsConnect>;

/// TLS to the database when the URL's `sslmode` asks for it.
fn tls(cfg: &tokio_postgres::Config, ca: Option<&Path>) -> Result<Tls> {
    if cfg.get_ssl_mode() == tokio_postgres::config::SslMode::Disable {
        return Ok(None);
    }
    let Some(ca) = ca else {
        if cfg.get_ssl_mode() == tokio_postgres::config::SslMode::Prefer {
            // The driver's default: plain unless asked (`sslmode=require` asks).
            return Ok(None);
        }
        return Err(StoreError::Invalid(
            "the store url asks for TLS (sslmode): set [store] ca, the database server's CA (PEM)"
                .into(),
        ));
    };
    let pem = std::fs::read(ca).map_err(|e| StoreError::io(format!("{}", ca.display()), e))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile_certs(&pem) {
        roots
            .add(c)
            .map_err(|e| StoreError::Invalid(format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(StoreError::Invalid(format!(
            "{}: no PEM certificate",
            ca.display()
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Invalid(format!("TLS to the database: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(config)))
}

/// The certificates of a PEM file.
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(|c| c.ok())
        .collect()
}

/// Opens a connection (TLS when `tls`), its driver spawned on the current runtime.
async fn connetti(
    cfg: &tokio_postgres::Config,
    tls: &Tls,
) -> std::result::Result<(tokio_postgres::Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>
{
    let guida =
        |e: tokio_postgres::Error| tracing::warn!("store: a database connection ended: {e}");
    Ok(match tls {
        None => {
            let (client, connection) = cfg.connect(NoTls).await?;
            let t = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    guida(e);
                }
            });
            (client, t)
        }
        Some(t) => {
            let (client, connection) = cfg.connect(t.clone()).await?;
            let t = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    guida(e);
                }
            });
            (client, t)
        }
    })
}

/// The PostgreSQL engine.
pub struct PgStore {
    pool: Pool,
    pool_lock: Pool,
    pool_sync: Pool,
    /// The URL without its password, for logs and `stats`.
    dove: String,
    /// Where the connections live (see [`Connessioni`]); dropped after the pool.
    /// Kept for the store's life (None when the server's runtime drives the connections).
    _io: Arc<IoRuntime>,
    /// The runtime that drives the connections (the store's own, or the server's).
    handle: tokio::runtime::Handle,
    cfg: tokio_postgres::Config,
    tls: Tls,
    /// The connection holding this node's number (its advisory lock lives with it).
    numero: Arc<std::sync::Mutex<Option<tokio_postgres::Client>>>,
    /// A problem /health must report (this node's number taken by another).
    avviso: Arc<std::sync::Mutex<Option<String>>>,
    /// Writes committed without waiting for the disk, counted; and how many of them a
    /// commit that waited has made durable since (see [`Store::flush`]).
    scritte: Arc<AtomicU64>,
    durevoli: AtomicU64,
    /// This node's tasks queue here before they ask the database for a modulo's lock.
    stripes: super::StripeModuli,
    /// Exchanges' records, committed in groups.
    gruppo: gruppo::Gruppo,
}

/// A connection in a transaction holding advisory locks of moduli (released when it ends),
/// and which of the locked codes are stored. Given back to the pool once its transaction is
/// committed or rolled back; closed if it cannot be (the server then ends the transaction).
struct LockRemoto {
    conn: Option<deadpool_postgres::Object>,
    handle: tokio::runtime::Handle,
    /// (kind, code) of the stored moduli among the locked codes.
    presenti: Vec<(String, String)>,
    /// Committed (or failed and rolled back): nothing left to end.
    finita: bool,
    scritte: Arc<AtomicU64>,
}

#[async_trait]
impl super::Modifica for LockRemoto {
    fn presente(&self, kind: Tipo, code: &str) -> Option<bool> {
        Some(
            self.presenti
                .iter()
                .any(|(k, c)| k == kind.as_str() && c == code),
        )
    }

    async fn apply(
        &mut self,
        batch: Vec<Write>,
        scambio: Option<super::Scambio<'_>>,
    ) -> Result<()> {
        let c = self.conn.as_ref().ok_or(StoreError::Closed)?;
        let mut items = Vec::with_capacity(batch.len() + 2);
        for w in batch {
            items.push(preparata(c, w).await?);
        }
        if let Some((ex, settle)) = scambio {
            // The exchange in the same transaction: its record and its effects commit together
            // (a synchronous commit: durable when it returns).
            items.push((
                c.prepare_cached(SQL_PUT_EXCHANGE).await.map_err(pe)?,
                params_exchange(ex)?,
            ));
            if let Some(id) = settle {
                items.push((
                    c.prepare_cached(SQL_SETTLE).await.map_err(pe)?,
                    vec![Box::new(id.to_string()), Box::new(seq_i(ex.seq)?)],
                ));
            }
        }
        // The writes and the COMMIT in one round trip; a failed write aborts the transaction
        // (COMMIT then rolls back): the first error is returned, nothing was written.
        let refs: Vec<Vec<&(dyn tokio_postgres::types::ToSql + Sync)>> =
            items.iter().map(|(_, p)| riferimenti(p)).collect();
        let mut passi: Vec<Passo<'_>> = Vec::with_capacity(items.len() + 1);
        for ((st, _), r) in items.iter().zip(&refs) {
            passi.push(Box::pin(c.execute(st, r)));
        }
        passi.push(Box::pin(async move {
            c.batch_execute("COMMIT").await.map(|_| 0)
        }));
        let esiti = in_ordine(passi).await;
        self.finita = true;
        for r in esiti {
            r.map_err(pe)?;
        }
        self.scritte.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

impl Drop for LockRemoto {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.finita {
                return;
            }
            self.handle.spawn(async move {
                if conn.batch_execute("ROLLBACK").await.is_err() {
                    // Out of the pool and closed: its transaction and locks go with it.
                    drop(deadpool_postgres::Object::take(conn));
                }
            });
        }
    }
}

/// A runtime of the store's own for its connections' sockets. A connection is driven by the
/// runtime that opened it: opened on a caller's runtime, it would die with that runtime (a
/// CLI command's short-lived one) or stall while that runtime is not polled, and the pool
/// would hand it to another caller. Queries go through channels, from any runtime.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async context forbids: let it go in the background.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

type Aperta<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = std::result::Result<
                    (tokio_postgres::Client, tokio::task::JoinHandle<()>),
                    tokio_postgres::Error,
                >,
            > + Send
            + 'a,
    >,
>;

/// Opens connections on the [`IoRuntime`].
struct Connessioni {
    handle: tokio::runtime::Handle,
    tls: Tls,
}

impl Connect for Connessioni {
    fn connect(&self, cfg: &tokio_postgres::Config) -> Aperta<'_> {
        let (cfg, tls) = (cfg.clone(), self.tls.clone());
        let apri = async move { connetti(&cfg, &tls).await };
        let aperta = self.handle.spawn(apri);
        Box::pin(async move {
            match aperta.await {
                Ok(r) => r,
                // The store is closing (its runtime stopped) or the driver panicked: to the
                // pool, a connection that could not be opened in time.
                Err(_) => Err(tokio_postgres::Error::__private_api_timeout()),
            }
        })
    }
}

/// The URL as it may be shown: without its password.
pub fn url_senza_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Maps a driver error: the database unreachable, a full disk, a conflict, the rest.
fn pe(e: tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::DISK_FULL {
            return StoreError::StorageFull(Arc::new(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                db.message().to_string(),
            )));
        }
        if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED
        {
            return StoreError::Conflict(db.message().to_string());
        }
        // Class 08 (connection exceptions), 57P (operator intervention: shutting down,
        // starting up), 53 (insufficient resources but the disk): try again later.
        let c = code.code();
        if c.starts_with("08") || c.starts_with("57P") || c.starts_with("53") {
            return StoreError::Unavailable(format!("{} ({c})", db.message()));
        }
        return StoreError::Engine(format!("postgres: {} ({c})", db.message()));
    }
    if e.is_closed() {
        return StoreError::Unavailable("the connection to the database closed".into());
    }
    // Without a database error it is the connection: refused, reset, timed out, TLS.
    let io = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some();
    if io || e.to_string().contains("timed out") || e.to_string().contains("connect") {
        return StoreError::Unavailable(e.to_string());
    }
    StoreError::Engine(format!("postgres: {e}"))
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pe(e),
        PoolError::Timeout(_) => {
            StoreError::Unavailable("no connection to the database in time".into())
        }
        PoolError::Closed => StoreError::Closed,
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own records cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

fn decode<T: serde::de::DeserializeOwned>(cosa: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| StoreError::corrupt(format!("{cosa}: {e}")))
}

fn col<'a, T: tokio_postgres::types::FromSql<'a>>(r: &'a Row, i: usize) -> Result<T> {
    r.try_get(i)
        .map_err(|e| StoreError::corrupt(format!("column {i}: {e}")))
}

fn seq_i(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Invalid(format!("sequence number {seq} too large")))
}

fn exchange_da(r: &Row, raw: bool) -> Result<Exchange> {
    let mut e: Exchange = decode("exchange", col::<&[u8]>(r, 0)?)?;
    if raw {
        e.request = col::<Vec<u8>>(r, 1)?;
        e.response = col::<Vec<u8>>(r, 2)?;
    }
    Ok(e)
}

impl PgStore {
    /// Connects (failing as [`StoreError::Unavailable`] when the database cannot be reached)
    /// and brings the schema up to date.
    pub async fn open(o: &PgOptions) -> Result<PgStore> {
        let s = PgStore::connect(o)?;
        s.migrate().await?;
        Ok(s)
    }

    /// The pool alone: nothing is asked of the database until the first operation.
    pub fn connect(o: &PgOptions) -> Result<PgStore> {
        let mut cfg = tokio_postgres::Config::from_str(&o.url).map_err(|e| {
            StoreError::Invalid(format!("store url {}: {e}", url_senza_password(&o.url)))
        })?;
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(o.wait);
        }
        if cfg.get_application_name().is_none() {
            cfg.application_name("pdd");
        }
        let tls = tls(&cfg, o.ca.as_deref())?;
        let cfg_durevole = cfg.clone();
        // Commits do not wait for the WAL flush; `flush` and the exchange's own commit do,
        // and the WAL is flushed in order, so they make every earlier commit durable too:
        // what was answered is durable, and concurrent exchanges share their flushes.
        let opzioni = format!(
            "{} -c synchronous_commit=off",
            cfg.get_options().unwrap_or("")
        );
        cfg.options(opzioni.trim());
        let (io, handle) = match &o.runtime {
            Some(h) => (Arc::new(IoRuntime(None)), h.clone()),
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("pdd-postgres")
                    .enable_all()
                    .build()
                    .map_err(|e| StoreError::io("start the database connections' runtime", e))?;
                let h = rt.handle().clone();
                (Arc::new(IoRuntime(Some(rt))), h)
            }
        };
        let nuovo_pool = |n: usize, cfg: &tokio_postgres::Config| {
            let mgr = Manager::from_connect(
                cfg.clone(),
                Connessioni {
                    handle: handle.clone(),
                    tls: tls.clone(),
                },
                ManagerConfig {
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(mgr)
                .max_size(n.max(1))
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(o.wait))
                .create_timeout(Some(o.wait))
                .recycle_timeout(Some(o.wait))
                .build()
                .map_err(|e| StoreError::Invalid(format!("store pool: {e}")))
        };
        let pool = nuovo_pool(o.pool, &cfg)?;
        // Connections holding moduli's locks come from a pool of their own: a change holds one
        // while it works through the other, so one pool could be all held by changes waiting
        // for a connection.
        let pool_lock = nuovo_pool((o.pool / 2).max(2), &cfg)?;
        // Commits that wait for the WAL flush (an exchange's record, `flush`): their own
        // connections, whose commits wait, so each is one statement.
        let pool_sync = nuovo_pool((o.pool / 2).max(2), &cfg_durevole)?;
        let gruppo = gruppo::Gruppo::avvia(pool_sync.clone(), &handle);
        Ok(PgStore {
            gruppo,
            handle: handle.clone(),
            pool,
            pool_lock,
            pool_sync,
            dove: url_senza_password(&o.url),
            _io: io,
            cfg,
            tls,
            numero: Default::default(),
            avviso: Default::default(),
            scritte: Arc::new(AtomicU64::new(0)),
            durevoli: AtomicU64::new(0),
            stripes: Default::default(),
        })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_err)
    }

    /// One write statement, committed without waiting (durable at the next flush); the rows
    /// it touched.
    async fn scrivi(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pe)?;
        let n = c.execute(&st, params).await.map_err(pe)?;
        self.scritte.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// Applies the migrations not yet applied, under an advisory lock; returns those applied.
    pub async fn migrate(&self) -> Result<Vec<u32>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pe)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRAZIONI])
            .await
            .map_err(pe)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS pdd_schema (
                versione integer PRIMARY KEY,
                applicata timestamptz NOT NULL DEFAULT now(),
                pdd text NOT NULL
            )",
        )
        .await
        .map_err(pe)?;
        let fatte: Vec<i32> = tx
            .query("SELECT versione FROM pdd_schema", &[])
            .await
            .map_err(pe)?
            .iter()
            .map(|r| col::<i32>(r, 0))
            .collect::<Result<_>>()?;
        let ultima = MIGRAZIONI.last().map(|m| m.0 as i32).unwrap_or(0);
        if let Some(v) = fatte.iter().find(|v| **v > ultima) {
            return Err(StoreError::Invalid(format!(
                "the database's schema is at version {v}, this pdd knows up to {ultima}: a newer pdd migrated it"
            )));
        }
        let mut applicate = Vec::new();
        for (v, sql) in MIGRAZIONI {
            if fatte.contains(&(*v as i32)) {
                continue;
            }
            tx.batch_execute(sql).await.map_err(pe)?;
            tx.execute(
                "INSERT INTO pdd_schema (versione, pdd) VALUES ($1, $2)",
                &[&(*v as i32), &env!("CARGO_PKG_VERSION")],
            )
            .await
            .map_err(pe)?;
            applicate.push(*v);
        }
        tx.commit().await.map_err(pe)?;
        if !applicate.is_empty() {
            tracing::info!(store = %self.dove, "schema migrations applied: {applicate:?}");
        }
        Ok(applicate)
    }

    /// Takes this node's number for as long as the process lives: refused when a live node
    /// holds it (two nodes with one number would issue the same Identificatori). The number
    /// is a session advisory lock on a connection of its own, so it is freed when the node
    /// dies, however it dies.
    pub async fn prendi_numero(&self, numero: u8, nome: &str) -> Result<()> {
        let handle = self.handle.clone();
        let (cfg, nome_s, tls) = (self.cfg.clone(), nome.to_string(), self.tls.clone());
        let preso = handle
            .spawn(async move { prendi(&cfg, &tls, numero, &nome_s).await })
            .await
            .map_err(|_| StoreError::Closed)??;
        let client = preso.map_err(|chi| {
            StoreError::Conflict(format!(
                "node number {numero} is held by a live node ({chi}): each node needs its own [cluster] numero"
            ))
        })?;
        *self.numero.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
        // Kept for the node's life: when its connection ends (the database restarted), the
        // number is taken again; if another node took it meanwhile, /health says so.
        let (cfg, nome, tenuto, avviso, tls) = (
            self.cfg.clone(),
            nome.to_string(),
            self.numero.clone(),
            self.avviso.clone(),
            self.tls.clone(),
        );
        handle.spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let chiuso = tenuto
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .is_none_or(|c| c.is_closed());
                if !chiuso {
                    continue;
                }
                let nuovo = match prendi(&cfg, &tls, numero, &nome).await {
                    Ok(Ok(c)) => {
                        tracing::info!(numero, "node number taken again");
                        Some(Ok(c))
                    }
                    Ok(Err(chi)) => {
                        tracing::error!(numero, "node number {numero} is now held by another node ({chi}): stop this node");
                        Some(Err(format!(
                            "node number {numero} is now held by another node ({chi}): this node must stop"
                        )))
                    }
                    // The database is out of reach: requests and /health say so already.
                    Err(_) => None,
                };
                match nuovo {
                    Some(Ok(c)) => {
                        *tenuto.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                        *avviso.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                    Some(Err(a)) => {
                        *avviso.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
                    }
                    None => {}
                }
            }
        });
        Ok(())
    }

    /// The schema version of the database.
    pub async fn schema_version(&self) -> Result<u32> {
        let c = self.client().await?;
        let r = c
            .query_one("SELECT coalesce(max(versione), 0) FROM pdd_schema", &[])
            .await
            .map_err(pe)?;
        Ok(col::<i32>(&r, 0)? as u32)
    }

    /// Where the store is (the URL without its password).
    pub fn dove(&self) -> &str {
        &self.dove
    }

    async fn docs<T: serde::de::DeserializeOwned>(
        &self,
        cosa: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<T>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pe)?;
        let rows = c.query(&st, params).await.map_err(pe)?;
        rows.iter()
            .map(|r| decode(cosa, col::<&[u8]>(r, 0)?))
            .collect()
    }

    async fn doc<T: serde::de::DeserializeOwned>(
        &self,
        cosa: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<T>> {
        let c = self.client().await?;
        let st = c.prepare_cached(sql).await.map_err(pe)?;
        match c.query_opt(&st, params).await.map_err(pe)? {
            Some(r) => Ok(Some(decode(cosa, col::<&[u8]>(&r, 0)?)?)),
            None => Ok(None),
        }
    }
}

/// An exchange and its ids, in one statement (atomic, one round trip); the first exchange
/// carrying an id keeps it.
const SQL_PUT_EXCHANGE: &str = "WITH e AS (
        INSERT INTO pdd_exchanges (seq, received_ms, meta, request, response)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (seq) DO UPDATE SET received_ms = EXCLUDED.received_ms,
            meta = EXCLUDED.meta, request = EXCLUDED.request, response = EXCLUDED.response
     )
     INSERT INTO pdd_ids (id, seq) SELECT x, $1 FROM unnest($6::text[]) AS x
     ON CONFLICT (id) DO NOTHING";

const SQL_SETTLE: &str = "INSERT INTO pdd_dup (id, seq, first_ms, repeats) VALUES ($1, $2, 0, 0)
     ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq";

/// The conditions of a search of published moduli ([`Criteri::ammette`] in SQL): `$1` the
/// kind, then professione (a prefix by whole segments), comune, provincia, regione by code,
/// regione by name (its comuni), dal, al (the day of the update), the words of `q`.
macro_rules! where_pubblicati {
    () => {
        "kind = $1 AND attivo
    AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM unnest(professioni) AS p
        WHERE p = $2 OR starts_with(p, $2 || '.')))
    AND ($3::text IS NULL OR upper(comune) = $3)
    AND ($4::text IS NULL OR upper(provincia) = $4)
    AND ($5::text IS NULL OR regione = $5)
    AND ($6::text[] IS NULL OR comune = ANY($6))
    AND ($7::date IS NULL OR giorno >= $7)
    AND ($8::date IS NULL OR giorno <= $8)
    AND ($9::text[] IS NULL OR NOT EXISTS (SELECT 1 FROM unnest($9::text[]) AS w
        WHERE strpos(testo, w) = 0))"
    };
}

const SQL_CONTA_PUBBLICATI: &str = concat!(
    "SELECT count(*) FROM pdd_moduli WHERE ",
    where_pubblicati!()
);

/// A page: after the cursor (`$10`, `$11`) or from an offset (`$12`), `$13` rows at most.
const SQL_PAGINA_PUBBLICATI: &str = concat!(
    "SELECT doc, agg_ms, codice FROM pdd_moduli WHERE ",
    where_pubblicati!(),
    " AND ($10::bigint IS NULL OR agg_ms < $10 OR (agg_ms = $10 AND codice > $11::text))
     ORDER BY agg_ms DESC, codice OFFSET $12 LIMIT $13"
);

/// The Identificatori an exchange is found by (`pdd_ids`): its request's and its answer's.
fn ids_di(ex: &Exchange) -> Vec<String> {
    [&ex.request_id, &ex.response_id]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

fn params_exchange(ex: &Exchange) -> Result<Params> {
    let ids = ids_di(ex);
    Ok(vec![
        Box::new(seq_i(ex.seq)?),
        Box::new(ex.received_ms()),
        Box::new(json(ex)),
        Box::new(ex.request.clone()),
        Box::new(ex.response.clone()),
        Box::new(ids),
    ])
}

/// Opens a connection of its own and takes node number `numero` on it (a session advisory
/// lock): the connection, or the name of the node holding the number.
async fn prendi(
    cfg: &tokio_postgres::Config,
    tls: &Tls,
    numero: u8,
    nome: &str,
) -> Result<std::result::Result<tokio_postgres::Client, String>> {
    let (client, _) = connetti(cfg, tls).await.map_err(pe)?;
    let chiave = LOCK_NODI + i64::from(numero);
    let preso: bool = col(
        &client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&chiave])
            .await
            .map_err(pe)?,
        0,
    )?;
    if !preso {
        let chi = client
            .query_opt(
                "SELECT nome FROM pdd_nodes WHERE numero = $1",
                &[&i32::from(numero)],
            )
            .await
            .map_err(pe)?
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .unwrap_or_else(|| "?".into());
        return Ok(Err(chi));
    }
    client
        .execute(
            "INSERT INTO pdd_nodes (numero, nome, pdd) VALUES ($1, $2, $3)
             ON CONFLICT (numero) DO UPDATE SET nome = EXCLUDED.nome, avviato = now(), pdd = EXCLUDED.pdd",
            &[&i32::from(numero), &nome, &env!("CARGO_PKG_VERSION")],
        )
        .await
        .map_err(pe)?;
    Ok(Ok(client))
}

/// A statement's parameters, owned (they outlive the pipeline that sends them).
type Params = Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>;

/// The statement and parameters of one write of a batch.
async fn preparata(c: &deadpool_postgres::Object, w: Write) -> Result<(Statement, Params)> {
    let st = |sql: &'static str| async move { c.prepare_cached(sql).await.map_err(pe) };
    Ok(match w {
        Write::Modulo(m) => {
            let sommario = Sommario::di(&m);
            // The published scheda (active moduli only): what the read API's SQL searches.
            let scheda = sommario
                .as_ref()
                .filter(|l| l.stato == StatoModulo::Attivo && l.scheda.is_some())
                .and(m.scheda.as_ref());
            let campo = |f: fn(&Scheda) -> Option<String>| scheda.and_then(f);
            (
                st(
                    "INSERT INTO pdd_moduli (kind, codice, doc, sommario, attivo, agg_ms, giorno,
                        professioni, comune, provincia, regione, testo)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                    ON CONFLICT (kind, codice) DO UPDATE SET doc = EXCLUDED.doc,
                        sommario = EXCLUDED.sommario, attivo = EXCLUDED.attivo,
                        agg_ms = EXCLUDED.agg_ms, giorno = EXCLUDED.giorno,
                        professioni = EXCLUDED.professioni, comune = EXCLUDED.comune,
                        provincia = EXCLUDED.provincia, regione = EXCLUDED.regione,
                        testo = EXCLUDED.testo",
                )
                .await?,
                vec![
                    Box::new(m.kind.as_str()),
                    Box::new(m.code.clone()),
                    Box::new(json(&m)),
                    Box::new(sommario.as_ref().map(json)),
                    Box::new(scheda.is_some()),
                    Box::new(m.updated_at.timestamp_millis()),
                    Box::new(m.updated_at.date_naive()),
                    Box::new(scheda.map(|s| s.professioni.clone())),
                    Box::new(campo(|s| s.comune.clone())),
                    Box::new(campo(|s| s.provincia.clone())),
                    Box::new(campo(|s| s.regione.clone())),
                    Box::new(scheda.map(|s| s.testo.clone())),
                ],
            )
        }
        Write::Forward(f) => (
            st("INSERT INTO pdd_outbox (seq, doc) VALUES ($1, $2)
                ON CONFLICT (seq) DO UPDATE SET doc = EXCLUDED.doc")
            .await?,
            vec![Box::new(seq_i(f.seq)?), Box::new(json(&f))],
        ),
        Write::ForwardDone(seq) => (
            st("DELETE FROM pdd_outbox WHERE seq = $1").await?,
            vec![Box::new(seq_i(seq)?)],
        ),
        Write::Eures(f) => (
            st(
                "INSERT INTO pdd_eures (kind, codice, seq, doc) VALUES ($1, $2, $3, $4)
                ON CONFLICT (kind, codice, seq) DO UPDATE SET doc = EXCLUDED.doc",
            )
            .await?,
            vec![
                Box::new(f.kind.as_str()),
                Box::new(f.codice.clone()),
                Box::new(seq_i(f.seq)?),
                Box::new(json(&f)),
            ],
        ),
        Write::Contatto(k) => (
            st("INSERT INTO pdd_contatti (codice, doc) VALUES ($1, $2)
                ON CONFLICT (codice) DO UPDATE SET doc = EXCLUDED.doc")
            .await?,
            vec![Box::new(k.codice.clone()), Box::new(json(&k))],
        ),
        Write::User(u) => (
            st("INSERT INTO pdd_users (nome, doc) VALUES ($1, $2)
                ON CONFLICT (nome) DO UPDATE SET doc = EXCLUDED.doc")
            .await?,
            vec![Box::new(u.nome.clone()), Box::new(json(&u))],
        ),
        Write::RemoveUser(nome) => (
            st("DELETE FROM pdd_users WHERE nome = $1").await?,
            vec![Box::new(nome)],
        ),
        Write::Rapporto(cf, r) => (
            st("INSERT INTO pdd_rapporti (cf, doc) VALUES ($1, $2)
                ON CONFLICT (cf) DO UPDATE SET doc = EXCLUDED.doc")
            .await?,
            vec![Box::new(cf), Box::new(json(&r))],
        ),
        Write::Intermediario(i) => (
            st("INSERT INTO pdd_intermediari (cf, doc) VALUES ($1, $2)
                ON CONFLICT (cf) DO UPDATE SET doc = EXCLUDED.doc")
            .await?,
            vec![Box::new(i.codice_fiscale.clone()), Box::new(json(&i))],
        ),
        Write::RemoveIntermediario(cf) => (
            st("DELETE FROM pdd_intermediari WHERE cf = $1").await?,
            vec![Box::new(cf)],
        ),
        Write::Diagnostico(d) => (
            st("INSERT INTO pdd_diagnostici (ms, doc) VALUES ($1, $2)").await?,
            vec![Box::new(d.ora.timestamp_millis()), Box::new(json(&d))],
        ),
    })
}

/// Borrowed views of owned parameters, as the driver takes them.
fn riferimenti(p: &Params) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    p.iter()
        .map(|b| b.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

/// Sends a transaction (BEGIN, the statements, COMMIT) in one round trip: tokio-postgres
/// pipelines requests sent before their answers are read, and sends them in the order they
/// are first polled, which [`in_ordine`] keeps. A failed statement aborts the transaction (the
/// later ones fail, COMMIT rolls back): the first error is returned, nothing was written.
async fn transazione(c: &deadpool_postgres::Object, items: &[(Statement, Params)]) -> Result<()> {
    let begin = "BEGIN";
    let refs: Vec<Vec<&(dyn tokio_postgres::types::ToSql + Sync)>> =
        items.iter().map(|(_, p)| riferimenti(p)).collect();
    let mut passi: Vec<Passo<'_>> = Vec::with_capacity(items.len() + 2);
    passi.push(Box::pin(
        async move { c.batch_execute(begin).await.map(|_| 0) },
    ));
    for ((st, _), r) in items.iter().zip(&refs) {
        passi.push(Box::pin(c.execute(st, r)));
    }
    passi.push(Box::pin(async move {
        c.batch_execute("COMMIT").await.map(|_| 0)
    }));
    for r in in_ordine(passi).await {
        r.map_err(pe)?;
    }
    Ok(())
}

type Passo<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = std::result::Result<u64, tokio_postgres::Error>>
            + Send
            + 'a,
    >,
>;

/// Runs futures together, each first polled in its order (so requests go out in that order),
/// and returns their outputs in the same order.
async fn in_ordine<T>(
    mut passi: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut esiti: Vec<Option<T>> = (0..passi.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut tutti = true;
        for (f, e) in passi.iter_mut().zip(esiti.iter_mut()) {
            if e.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *e = Some(v),
                    std::task::Poll::Pending => tutti = false,
                }
            }
        }
        if tutti {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    esiti.into_iter().flatten().collect()
}

#[async_trait]
impl Store for PgStore {
    fn engine(&self) -> &'static str {
        "postgres"
    }

    fn avviso(&self) -> Option<String> {
        self.avviso
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn reserve_ids(&self, c: Contatore<'_>, block: u32, capacity: u32) -> Result<u32> {
        let key = c.chiave();
        let mut cl = self.client().await?;
        let tx = cl.transaction().await.map_err(pe)?;
        // Durable before any of its numbers is used (once per block).
        tx.batch_execute("SET LOCAL synchronous_commit TO on")
            .await
            .map_err(pe)?;
        // The row first (two nodes may create it at once: one insert wins, both lock it).
        let st = tx
            .prepare_cached(
                "INSERT INTO pdd_counters (chiave, used) VALUES ($1, 0) ON CONFLICT (chiave) DO NOTHING",
            )
            .await
            .map_err(pe)?;
        tx.execute(&st, &[&key]).await.map_err(pe)?;
        let st = tx
            .prepare_cached("SELECT used FROM pdd_counters WHERE chiave = $1 FOR UPDATE")
            .await
            .map_err(pe)?;
        let used: i64 = col(&tx.query_one(&st, &[&key]).await.map_err(pe)?, 0)?;
        if used >= i64::from(capacity) {
            return Err(StoreError::Exhausted(key));
        }
        let nuovo = (used + i64::from(block)).min(i64::from(capacity));
        let st = tx
            .prepare_cached("UPDATE pdd_counters SET used = $2 WHERE chiave = $1")
            .await
            .map_err(pe)?;
        tx.execute(&st, &[&key, &nuovo]).await.map_err(pe)?;
        tx.commit().await.map_err(pe)?;
        Ok((used + 1) as u32)
    }

    async fn claim(&self, id: &str, now_ms: i64, scade_ms: Option<i64>) -> Result<Claim> {
        let c = self.client().await?;
        let ins = c
            .prepare_cached(
                "INSERT INTO pdd_dup (id, seq, first_ms, repeats, scade_ms) VALUES ($1, 0, $2, 0, $3)
                 ON CONFLICT (id) DO UPDATE SET first_ms = EXCLUDED.first_ms, scade_ms = EXCLUDED.scade_ms
                 WHERE pdd_dup.seq = 0 AND pdd_dup.first_ms < $4",
            )
            .await
            .map_err(pe)?;
        let sel = c
            .prepare_cached("SELECT seq, first_ms, repeats, scade_ms FROM pdd_dup WHERE id = $1")
            .await
            .map_err(pe)?;
        // An entry released between the insert and the select: claim again.
        for _ in 0..3 {
            // A claim still in flight after [`super::ABBANDONO_MS`] belonged to a node that died
            // while processing (no request lasts that long): taken over, so that the sender's
            // resend is processed instead of being told "retry" until retention.
            if c.execute(
                &ins,
                &[&id, &now_ms, &scade_ms, &(now_ms - super::ABBANDONO_MS)],
            )
            .await
            .map_err(pe)?
                == 1
            {
                self.scritte.fetch_add(1, Ordering::AcqRel);
                return Ok(Claim::New);
            }
            if let Some(r) = c.query_opt(&sel, &[&id]).await.map_err(pe)? {
                return Ok(Claim::Duplicate(DupEntry {
                    seq: col::<i64>(&r, 0)? as u64,
                    first_ms: col(&r, 1)?,
                    repeats: col::<i64>(&r, 2)?.clamp(0, u32::MAX as i64) as u32,
                    scade_ms: col(&r, 3)?,
                }));
            }
        }
        Err(StoreError::Conflict(format!(
            "the claim of {id} kept racing with its release"
        )))
    }

    async fn settle(&self, id: &str, seq: u64) -> Result<()> {
        self.scrivi(SQL_SETTLE, &[&id, &seq_i(seq)?]).await?;
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<()> {
        self.scrivi("DELETE FROM pdd_dup WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    async fn count_repeat(&self, id: &str) -> Result<()> {
        self.scrivi(
            "UPDATE pdd_dup SET repeats = repeats + 1 WHERE id = $1",
            &[&id],
        )
        .await?;
        Ok(())
    }

    async fn next_seq(&self) -> Result<u64> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT nextval('pdd_seq')")
            .await
            .map_err(pe)?;
        let r = c.query_one(&st, &[]).await.map_err(pe)?;
        Ok(col::<i64>(&r, 0)? as u64)
    }

    async fn put_exchange(&self, ex: &Exchange) -> Result<()> {
        let p = params_exchange(ex)?;
        self.scrivi(SQL_PUT_EXCHANGE, &riferimenti(&p)).await?;
        Ok(())
    }

    async fn exchange(&self, seq: u64) -> Result<Option<Exchange>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT meta, request, response FROM pdd_exchanges WHERE seq = $1")
            .await
            .map_err(pe)?;
        match c.query_opt(&st, &[&seq_i(seq)?]).await.map_err(pe)? {
            Some(r) => Ok(Some(exchange_da(&r, true)?)),
            None => Ok(None),
        }
    }

    async fn exchange_by_id(&self, id: &str) -> Result<Option<Exchange>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT e.meta, e.request, e.response FROM pdd_ids i
                 JOIN pdd_exchanges e ON e.seq = i.seq WHERE i.id = $1",
            )
            .await
            .map_err(pe)?;
        match c.query_opt(&st, &[&id]).await.map_err(pe)? {
            Some(r) => Ok(Some(exchange_da(&r, true)?)),
            None => Ok(None),
        }
    }

    async fn recent(&self, limit: usize) -> Result<Vec<Exchange>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT meta FROM pdd_exchanges ORDER BY seq DESC LIMIT $1")
            .await
            .map_err(pe)?;
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = c.query(&st, &[&n]).await.map_err(pe)?;
        rows.iter().map(|r| exchange_da(r, false)).collect()
    }

    async fn exchanges_between(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Exchange>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT meta FROM pdd_exchanges WHERE received_ms >= $1 AND received_ms < $2
                 ORDER BY received_ms, seq",
            )
            .await
            .map_err(pe)?;
        let rows = c
            .query(
                &st,
                &[&from_ms.unwrap_or(i64::MIN), &to_ms.unwrap_or(i64::MAX)],
            )
            .await
            .map_err(pe)?;
        rows.iter().map(|r| exchange_da(r, false)).collect()
    }

    async fn modulo(&self, kind: Tipo, code: &str) -> Result<Option<StoredModulo>> {
        self.doc(
            "modulo",
            "SELECT doc FROM pdd_moduli WHERE kind = $1 AND codice = $2",
            &[&kind.as_str(), &code],
        )
        .await
    }

    async fn has_modulo(&self, kind: Tipo, code: &str) -> Result<bool> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT 1 FROM pdd_moduli WHERE kind = $1 AND codice = $2")
            .await
            .map_err(pe)?;
        Ok(c.query_opt(&st, &[&kind.as_str(), &code])
            .await
            .map_err(pe)?
            .is_some())
    }

    async fn moduli(&self, kind: Tipo) -> Result<Vec<StoredModulo>> {
        self.docs(
            "modulo",
            "SELECT doc FROM pdd_moduli WHERE kind = $1 ORDER BY codice",
            &[&kind.as_str()],
        )
        .await
    }

    async fn sommari(&self, kind: Tipo, filtro: FiltroSommari<'_>) -> Result<Vec<Arc<Sommario>>> {
        let tutti: Vec<Sommario> = self
            .docs(
                "summary",
                "SELECT sommario FROM pdd_moduli WHERE kind = $1 AND sommario IS NOT NULL
                 ORDER BY codice",
                &[&kind.as_str()],
            )
            .await?;
        Ok(tutti
            .into_iter()
            .filter(|s| filtro(s))
            .map(Arc::new)
            .collect())
    }

    async fn pubblicati(
        &self,
        kind: Tipo,
        criteri: &Criteri,
        pagina: &Pagina,
        misura: usize,
    ) -> Result<Scelta<StoredModulo>> {
        let c = self.client().await?;
        let conta = c.prepare_cached(SQL_CONTA_PUBBLICATI).await.map_err(pe)?;
        let pagina_st = c.prepare_cached(SQL_PAGINA_PUBBLICATI).await.map_err(pe)?;
        let professione = criteri
            .professione
            .as_deref()
            .map(|p| p.trim_end_matches('.').to_string());
        let comune = criteri.comune.as_deref().map(str::to_ascii_uppercase);
        let provincia = criteri.provincia.as_deref().map(str::to_ascii_uppercase);
        let regione = criteri.regione_codice();
        let comuni = criteri.comuni_della_regione();
        let parole = criteri.parole();
        let parole = (!parole.is_empty()).then_some(parole);
        let filtri: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
            &kind.as_str(),
            &professione,
            &comune,
            &provincia,
            &regione,
            &comuni,
            &criteri.dal,
            &criteri.al,
            &parole,
        ];
        let (dopo_ms, dopo_codice, salta) = match pagina {
            Pagina::Dopo(k) => (Some(k.aggiornata_ms), Some(k.codice.as_str()), 0i64),
            Pagina::Numero(n) => (
                None,
                None,
                i64::try_from(n.saturating_sub(1).saturating_mul(misura)).unwrap_or(i64::MAX),
            ),
        };
        // One more than the page: whether another follows.
        let quanti = i64::try_from(misura.saturating_add(1)).unwrap_or(i64::MAX);
        let mut tutti: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = filtri.to_vec();
        tutti.extend_from_slice(&[&dopo_ms, &dopo_codice, &salta, &quanti]);
        // Both in one round trip (pipelined).
        let (totale, righe) = futures_util::future::try_join(
            c.query_one(&conta, &filtri),
            c.query(&pagina_st, &tutti),
        )
        .await
        .map_err(pe)?;
        let totale = usize::try_from(col::<i64>(&totale, 0)?).unwrap_or(0);
        let mut moduli = Vec::with_capacity(righe.len());
        let mut ultimo = None;
        for r in righe.iter().take(misura) {
            let m: StoredModulo = decode("modulo", col::<&[u8]>(r, 0)?)?;
            ultimo = Some(Cursore {
                aggiornata_ms: col(r, 1)?,
                codice: col(r, 2)?,
            });
            moduli.push(m);
        }
        Ok(Scelta {
            totale,
            pagina: moduli,
            successivo: if righe.len() > misura { ultimo } else { None },
        })
    }

    async fn outbox(&self) -> Result<Vec<Forward>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached("SELECT doc, seq FROM pdd_outbox ORDER BY seq")
            .await
            .map_err(pe)?;
        let rows = c.query(&st, &[]).await.map_err(pe)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            match decode::<Forward>("forward", col::<&[u8]>(r, 0)?) {
                Ok(f) => out.push(f),
                Err(e) => {
                    tracing::error!(seq = col::<i64>(r, 1).unwrap_or(-1), "outbox: {e}")
                }
            }
        }
        Ok(out)
    }

    async fn eures(&self) -> Result<Vec<Forward>> {
        self.docs(
            "eures",
            "SELECT doc FROM pdd_eures ORDER BY kind, codice, seq",
            &[],
        )
        .await
    }

    async fn contatti(&self) -> Result<Vec<Contatto>> {
        self.docs(
            "contatto",
            "SELECT doc FROM pdd_contatti ORDER BY codice",
            &[],
        )
        .await
    }

    async fn users(&self) -> Result<Vec<User>> {
        self.docs("user", "SELECT doc FROM pdd_users ORDER BY nome", &[])
            .await
    }

    async fn user(&self, nome: &str) -> Result<Option<User>> {
        self.doc(
            "user",
            "SELECT doc FROM pdd_users WHERE nome = $1",
            &[&nome],
        )
        .await
    }

    async fn rapporto(&self, cf: &str) -> Result<Option<Rapporto>> {
        self.doc(
            "rapporto",
            "SELECT doc FROM pdd_rapporti WHERE cf = $1",
            &[&cf],
        )
        .await
    }

    async fn intermediari(&self) -> Result<Vec<Intermediario>> {
        self.docs(
            "intermediario",
            "SELECT doc FROM pdd_intermediari ORDER BY cf",
            &[],
        )
        .await
    }

    async fn intermediario(&self, cf: &str) -> Result<Option<Intermediario>> {
        self.doc(
            "intermediario",
            "SELECT doc FROM pdd_intermediari WHERE cf = $1",
            &[&cf],
        )
        .await
    }

    async fn ha_intermediari(&self) -> Result<bool> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT EXISTS (SELECT 1 FROM pdd_intermediari)", &[])
            .await
            .map_err(pe)?;
        col(&row, 0)
    }

    async fn diagnostici(
        &self,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> Result<Vec<Diagnostico>> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT doc FROM pdd_diagnostici WHERE ms >= $1 AND ms < $2 ORDER BY ms, n",
            )
            .await
            .map_err(pe)?;
        let rows = c
            .query(
                &st,
                &[&from_ms.unwrap_or(i64::MIN), &to_ms.unwrap_or(i64::MAX)],
            )
            .await
            .map_err(pe)?;
        // Unreadable entries are left out (the contract), and logged.
        Ok(rows
            .iter()
            .filter_map(|r| {
                let v = col::<&[u8]>(r, 0).ok()?;
                decode::<Diagnostico>("diagnostic", v)
                    .map_err(|e| tracing::warn!("{e}"))
                    .ok()
            })
            .collect())
    }

    async fn partners(&self) -> Result<Vec<Soggetto>> {
        self.docs(
            "partner",
            "SELECT doc FROM pdd_partners ORDER BY tipo, nome",
            &[],
        )
        .await
    }

    async fn put_partner(&self, s: &Soggetto) -> Result<()> {
        self.scrivi(
            "INSERT INTO pdd_partners (tipo, nome, doc) VALUES ($1, $2, $3)
             ON CONFLICT (tipo, nome) DO UPDATE SET doc = EXCLUDED.doc",
            &[&s.tipo, &s.nome, &json(s)],
        )
        .await?;
        // The command that adds a partner returns when it is durable.
        self.flush().await
    }

    async fn remove_partner(&self, tipo: &str, nome: &str) -> Result<bool> {
        let tolto = self
            .scrivi(
                "DELETE FROM pdd_partners WHERE tipo = $1 AND nome = $2",
                &[&tipo, &nome],
            )
            .await?
            > 0;
        self.flush().await?;
        Ok(tolto)
    }

    async fn export(&self, sink: &(dyn Fn(super::Record) -> bool + Send + Sync)) -> Result<()> {
        use super::Record;
        if !super::esporta_comuni(self, sink).await? {
            return Ok(());
        }
        let c = self.client().await?;
        for r in c
            .query("SELECT chiave, used FROM pdd_counters ORDER BY chiave", &[])
            .await
            .map_err(pe)?
        {
            if !sink(Record::Counter(
                col(&r, 0)?,
                col::<i64>(&r, 1)?.max(0) as u64,
            )) {
                return Ok(());
            }
        }
        for r in c
            .query(
                "SELECT id, seq, first_ms, repeats, scade_ms FROM pdd_dup ORDER BY id",
                &[],
            )
            .await
            .map_err(pe)?
        {
            let d = DupEntry {
                seq: col::<i64>(&r, 1)? as u64,
                first_ms: col(&r, 2)?,
                repeats: col::<i64>(&r, 3)?.clamp(0, u32::MAX as i64) as u32,
                scade_ms: col(&r, 4)?,
            };
            if !sink(Record::Dup(col(&r, 0)?, d)) {
                return Ok(());
            }
        }
        for r in c
            .query("SELECT cf, doc FROM pdd_rapporti ORDER BY cf", &[])
            .await
            .map_err(pe)?
        {
            let rapporto = decode("rapporto", col::<&[u8]>(&r, 1)?)?;
            if !sink(Record::Rapporto(col(&r, 0)?, rapporto)) {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn import(&self, records: Vec<super::Record>) -> Result<()> {
        use super::Record;
        let c = self.client().await?;
        let mut items = Vec::with_capacity(records.len() + 1);
        let mut max_seq = 0i64;
        for r in records {
            let item = match r {
                Record::Counter(k, n) => (
                    c.prepare_cached(
                        "INSERT INTO pdd_counters (chiave, used) VALUES ($1, $2)
                         ON CONFLICT (chiave) DO UPDATE SET used = GREATEST(pdd_counters.used, EXCLUDED.used)",
                    )
                    .await
                    .map_err(pe)?,
                    vec![
                        Box::new(k) as Box<dyn tokio_postgres::types::ToSql + Sync + Send>,
                        Box::new(i64::try_from(n).unwrap_or(i64::MAX)),
                    ],
                ),
                Record::Dup(id, d) => (
                    c.prepare_cached(
                        "INSERT INTO pdd_dup (id, seq, first_ms, repeats, scade_ms) VALUES ($1, $2, $3, $4, $5)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .await
                    .map_err(pe)?,
                    vec![
                        Box::new(id) as Box<dyn tokio_postgres::types::ToSql + Sync + Send>,
                        Box::new(seq_i(d.seq)?),
                        Box::new(d.first_ms),
                        Box::new(i64::from(d.repeats)),
                        Box::new(d.scade_ms),
                    ],
                ),
                Record::Exchange(e) => {
                    max_seq = max_seq.max(seq_i(e.seq)?);
                    (
                        c.prepare_cached(SQL_PUT_EXCHANGE).await.map_err(pe)?,
                        params_exchange(&e)?,
                    )
                }
                Record::Partner(p) => (
                    c.prepare_cached(
                        "INSERT INTO pdd_partners (tipo, nome, doc) VALUES ($1, $2, $3)
                         ON CONFLICT (tipo, nome) DO UPDATE SET doc = EXCLUDED.doc",
                    )
                    .await
                    .map_err(pe)?,
                    vec![
                        Box::new(p.tipo.clone()) as Box<dyn tokio_postgres::types::ToSql + Sync + Send>,
                        Box::new(p.nome.clone()),
                        Box::new(json(&p)),
                    ],
                ),
                Record::Modulo(m) => preparata(&c, Write::Modulo(m)).await?,
                Record::Forward(f) => {
                    max_seq = max_seq.max(seq_i(f.seq)?);
                    preparata(&c, Write::Forward(f)).await?
                }
                Record::Eures(f) => {
                    max_seq = max_seq.max(seq_i(f.seq)?);
                    preparata(&c, Write::Eures(f)).await?
                }
                Record::Contatto(k) => preparata(&c, Write::Contatto(k)).await?,
                Record::User(u) => preparata(&c, Write::User(u)).await?,
                Record::Rapporto(cf, r) => preparata(&c, Write::Rapporto(cf, r)).await?,
                Record::Intermediario(i) => preparata(&c, Write::Intermediario(i)).await?,
                Record::Diagnostico(d) => preparata(&c, Write::Diagnostico(d)).await?,
            };
            items.push(item);
        }
        if max_seq > 0 {
            // Sequence numbers go on after the ones brought in.
            items.push((
                c.prepare_cached(
                    "SELECT setval('pdd_seq', GREATEST((SELECT last_value FROM pdd_seq), $1))",
                )
                .await
                .map_err(pe)?,
                vec![Box::new(max_seq)],
            ));
        }
        transazione(&c, &items).await?;
        self.scritte.fetch_add(1, Ordering::AcqRel);
        self.flush().await
    }

    async fn lock_moduli(&self, codici: &[&str]) -> Result<super::ModuliLock> {
        let locali = self.stripes.lock(codici).await;
        let mut chiavi: Vec<i64> = codici.iter().map(|c| super::chiave_codice(c)).collect();
        chiavi.sort_unstable();
        chiavi.dedup();
        let c = self.pool_lock.get().await.map_err(pool_err)?;
        // In key order, in one statement: two nodes locking overlapping sets cannot deadlock.
        // Transaction locks: the change's write commits the transaction and so releases them.
        let lock = c
            .prepare_cached(
                "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS x",
            )
            .await
            .map_err(pe)?;
        let presenti = c
            // One probe of the primary key per (kind, code): a plan that cannot turn into a
            // scan of the table, whatever the planner guesses of the arrays.
            .prepare_cached(
                "SELECT k, c FROM unnest($2::text[]) AS k, unnest($1::text[]) AS c
                 WHERE (SELECT true FROM pdd_moduli WHERE kind = k AND codice = c)",
            )
            .await
            .map_err(pe)?;
        let mut remoto = LockRemoto {
            conn: Some(c),
            handle: self.handle.clone(),
            presenti: Vec::new(),
            finita: false,
            scritte: self.scritte.clone(),
        };
        let codici: Vec<&str> = codici.to_vec();
        let esiti = {
            let Some(c) = remoto.conn.as_ref() else {
                return Err(StoreError::Closed);
            };
            // BEGIN, the locks, and what is stored once they are held: one round trip.
            let p_lock: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&chiavi];
            let tipi: Vec<&str> = Tipo::ALL.iter().map(|t| t.as_str()).collect();
            let p_presenti: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&codici, &tipi];
            let passi: Vec<
                std::pin::Pin<
                    Box<
                        dyn std::future::Future<
                                Output = std::result::Result<Vec<Row>, tokio_postgres::Error>,
                            > + Send
                            + '_,
                    >,
                >,
            > = vec![
                Box::pin(async move { c.batch_execute("BEGIN").await.map(|_| Vec::new()) }),
                Box::pin(c.query(&lock, &p_lock)),
                Box::pin(c.query(&presenti, &p_presenti)),
            ];
            in_ordine(passi).await
        };
        let mut esiti = esiti.into_iter();
        for _ in 0..2 {
            esiti.next().ok_or(StoreError::Closed)?.map_err(pe)?;
        }
        for r in esiti.next().ok_or(StoreError::Closed)?.map_err(pe)? {
            remoto.presenti.push((col(&r, 0)?, col(&r, 1)?));
        }
        Ok(super::ModuliLock::new(locali, Some(Box::new(remoto))))
    }

    async fn lease(&self, nome: &str, holder: &str, now_ms: i64, ttl_ms: i64) -> Result<bool> {
        let c = self.client().await?;
        // Taken when free, expired or already ours: one statement, so two nodes asking at
        // once cannot both win (the row is locked by the first).
        let st = c
            .prepare_cached(
                "INSERT INTO pdd_leases (nome, holder, scade_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (nome) DO UPDATE SET holder = EXCLUDED.holder, scade_ms = EXCLUDED.scade_ms
                 WHERE pdd_leases.holder = EXCLUDED.holder OR pdd_leases.scade_ms <= $4
                 RETURNING holder",
            )
            .await
            .map_err(pe)?;
        Ok(
            c.query_opt(&st, &[&nome, &holder, &(now_ms + ttl_ms), &now_ms])
                .await
                .map_err(pe)?
                .is_some(),
        )
    }

    async fn release_lease(&self, nome: &str, holder: &str) -> Result<()> {
        self.scrivi(
            "DELETE FROM pdd_leases WHERE nome = $1 AND holder = $2",
            &[&nome, &holder],
        )
        .await?;
        Ok(())
    }

    async fn apply(&self, batch: Vec<Write>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let c = self.client().await?;
        let mut items = Vec::with_capacity(batch.len());
        for w in batch {
            items.push(preparata(&c, w).await?);
        }
        // Committed without waiting for the disk: durable at the next flush (the contract).
        // One write is a transaction of its own.
        if let [(st, p)] = items.as_slice() {
            let refs = riferimenti(p);
            c.execute(st, &refs).await.map_err(pe)?;
        } else {
            transazione(&c, &items).await?;
        }
        self.scritte.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    async fn flush(&self) -> Result<()> {
        // Writes commit without waiting for the WAL flush; one commit that waits makes the WAL
        // durable up to it, every earlier commit included. Nothing new since: nothing to do.
        let fino = self.scritte.load(Ordering::Acquire);
        if self.durevoli.load(Ordering::Acquire) >= fino {
            return Ok(());
        }
        let c = self.pool_sync.get().await.map_err(pool_err)?;
        let st = c
            .prepare_cached(
                "INSERT INTO pdd_flush (id, n) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET n = pdd_flush.n + 1",
            )
            .await
            .map_err(pe)?;
        c.execute(&st, &[]).await.map_err(pe)?;
        self.durevoli.fetch_max(fino, Ordering::AcqRel);
        Ok(())
    }

    async fn commit_exchange_with(
        &self,
        ex: &Exchange,
        settle: Option<&str>,
        batch: Vec<Write>,
    ) -> Result<()> {
        if batch.is_empty() {
            return self.commit_exchange(ex, settle).await;
        }
        // A transaction of no locks: the writes, the exchange and the COMMIT.
        let mut t = self.lock_moduli(&[]).await?;
        t.commit(self, batch, ex, settle).await
    }

    async fn commit_exchange(&self, ex: &Exchange, settle: Option<&str>) -> Result<()> {
        let fino = self.scritte.load(Ordering::Acquire);
        // The record, its ids, its claim settled, with those of concurrent exchanges, in one
        // commit that waits for the disk, and so makes every earlier write durable too.
        self.gruppo.commit(ex, settle).await?;
        self.durevoli.fetch_max(fino, Ordering::AcqRel);
        Ok(())
    }

    async fn summary(&self) -> Result<String> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM pdd_exchanges), (SELECT count(*) FROM pdd_dup),
                        (SELECT count(*) FROM pdd_moduli), (SELECT count(*) FROM pdd_outbox),
                        (SELECT coalesce(max(versione), 0) FROM pdd_schema)",
                &[],
            )
            .await
            .map_err(pe)?;
        Ok(format!(
            "{} exchanges, {} ids in the duplicate filter, {} moduli, {} forwards in the outbox (PostgreSQL {}, schema {})",
            col::<i64>(&r, 0)?,
            col::<i64>(&r, 1)?,
            col::<i64>(&r, 2)?,
            col::<i64>(&r, 3)?,
            self.dove,
            col::<i32>(&r, 4)?,
        ))
    }

    async fn backup(&self, _dest: &Path, _clock: &dyn Clock) -> Result<Manifest> {
        Err(StoreError::Unsupported(
            "backup of a PostgreSQL store (use pg_dump: docs/cluster.md)",
        ))
    }

    async fn stats(&self) -> Result<Stats> {
        let c = self.client().await?;
        let mut trees = Vec::new();
        let mut totale = 0u64;
        for (nome, tabella) in TABELLE {
            let r = c
                .query_one(
                    &format!("SELECT count(*), pg_total_relation_size('{tabella}') FROM {tabella}"),
                    &[],
                )
                .await
                .map_err(pe)?;
            let bytes = col::<i64>(&r, 1)?.max(0) as u64;
            totale += bytes;
            trees.push(TreeStats {
                name: nome.to_string(),
                entries: col::<i64>(&r, 0)?.max(0) as u64,
                key_bytes: 0,
                value_bytes: bytes,
            });
        }
        Ok(Stats {
            path: self.dove.clone(),
            trees,
            size_on_disk: totale,
            bytes_in_directory: totale,
            ..Default::default()
        })
    }

    async fn check(&self) -> Result<CheckReport> {
        let inizio = std::time::Instant::now();
        let c = self.client().await?;
        let mut r = CheckReport::default();
        let rows = c
            .query("SELECT seq, meta FROM pdd_exchanges ORDER BY seq", &[])
            .await
            .map_err(pe)?;
        r.conta("exchanges", rows.len() as u64);
        for row in &rows {
            let seq: i64 = col(row, 0)?;
            match decode::<Exchange>("exchange", col::<&[u8]>(row, 1)?) {
                Ok(e) if e.seq as i64 != seq => {
                    r.problema(format!("exchange {seq}: its record says seq {}", e.seq))
                }
                Ok(_) => {}
                Err(e) => r.problema(format!("exchange {seq}: {e}")),
            }
        }
        let orfani = c
            .query(
                "SELECT i.id, i.seq FROM pdd_ids i LEFT JOIN pdd_exchanges e ON e.seq = i.seq
                 WHERE e.seq IS NULL LIMIT 1000",
                &[],
            )
            .await
            .map_err(pe)?;
        for o in &orfani {
            r.problema(format!(
                "ids: {} points to exchange {}, which is missing",
                col::<&str>(o, 0)?,
                col::<i64>(o, 1)?
            ));
        }
        let n: i64 = col(
            &c.query_one("SELECT count(*) FROM pdd_ids", &[])
                .await
                .map_err(pe)?,
            0,
        )?;
        r.conta("ids", n as u64);
        let n: i64 = col(
            &c.query_one("SELECT count(*) FROM pdd_dup", &[])
                .await
                .map_err(pe)?,
            0,
        )?;
        r.conta("dup", n as u64);
        let rows = c
            .query("SELECT kind, codice, doc FROM pdd_moduli", &[])
            .await
            .map_err(pe)?;
        r.conta("moduli", rows.len() as u64);
        for row in &rows {
            let (kind, code): (&str, &str) = (col(row, 0)?, col(row, 1)?);
            match decode::<StoredModulo>("modulo", col::<&[u8]>(row, 2)?) {
                Ok(m) if m.kind.as_str() != kind || m.code != code => {
                    r.problema(format!("modulo {kind}/{code}: its record says otherwise"))
                }
                Ok(_) => {}
                Err(e) => r.problema(format!("modulo {kind}/{code}: {e}")),
            }
        }
        // The other records: each decodes.
        for (nome, tabella, chiave) in [
            ("outbox", "pdd_outbox", "seq::text"),
            ("eures", "pdd_eures", "codice"),
            ("contatti", "pdd_contatti", "codice"),
            ("utenti", "pdd_users", "nome"),
            ("rapporti", "pdd_rapporti", "cf"),
            ("intermediari", "pdd_intermediari", "cf"),
            ("diagnostici", "pdd_diagnostici", "n::text"),
            ("partners", "pdd_partners", "nome"),
        ] {
            let rows = c
                .query(&format!("SELECT {chiave}, doc FROM {tabella}"), &[])
                .await
                .map_err(pe)?;
            r.conta(nome, rows.len() as u64);
            for row in &rows {
                let k: &str = col(row, 0)?;
                let v: &[u8] = col(row, 1)?;
                let ok = match nome {
                    "outbox" | "eures" => decode::<Forward>(nome, v).map(|_| ()),
                    "contatti" => decode::<Contatto>(nome, v).map(|_| ()),
                    "utenti" => decode::<User>(nome, v).map(|_| ()),
                    "rapporti" => decode::<Rapporto>(nome, v).map(|_| ()),
                    "intermediari" => decode::<Intermediario>(nome, v).map(|_| ()),
                    "diagnostici" => decode::<Diagnostico>(nome, v).map(|_| ()),
                    _ => decode::<Soggetto>(nome, v).map(|_| ()),
                };
                if let Err(e) = ok {
                    r.problema(format!("{nome} {k}: {e}"));
                }
            }
        }
        r.millis = inizio.elapsed().as_millis() as u64;
        Ok(r)
    }

    async fn purge(&self, l: &PurgeLimits) -> Result<PurgeReport> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pe)?;
        let mut r = PurgeReport::default();
        if let Some(prima) = l.exchanges_before_ms {
            // Oldest first by seq, up to the first one received inside the window (as the
            // other engines): an old time behind a recent one waits for a later purge.
            let via: Vec<i64> = tx
                .query(
                    "DELETE FROM pdd_exchanges WHERE seq < coalesce(
                        (SELECT min(seq) FROM pdd_exchanges WHERE received_ms >= $1),
                        9223372036854775807)
                     RETURNING seq",
                    &[&prima],
                )
                .await
                .map_err(pe)?
                .iter()
                .map(|row| col::<i64>(row, 0))
                .collect::<Result<_>>()?;
            r.exchanges = via.len() as u64;
            r.ids = tx
                .execute("DELETE FROM pdd_ids WHERE seq = ANY($1)", &[&via])
                .await
                .map_err(pe)?;
            r.diagnostici = tx
                .execute("DELETE FROM pdd_diagnostici WHERE ms < $1", &[&prima])
                .await
                .map_err(pe)?;
        }
        if let Some(prima) = l.dup_before_ms {
            r.dup = tx
                .execute(
                    "DELETE FROM pdd_dup WHERE seq <> 0 AND first_ms < $1
                     AND (scade_ms IS NULL OR scade_ms < $2)",
                    &[&prima, &l.expired_before_ms],
                )
                .await
                .map_err(pe)?;
        }
        tx.commit().await.map_err(pe)?;
        self.scritte.fetch_add(1, Ordering::AcqRel);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_is_never_shown() {
        assert_eq!(
            url_senza_password("postgres://pdd:segreto@127.0.0.1:5432/pdd"),
            "postgres://pdd:***@127.0.0.1:5432/pdd"
        );
        assert_eq!(
            url_senza_password("postgres://pdd@127.0.0.1/pdd"),
            "postgres://pdd@127.0.0.1/pdd"
        );
        assert_eq!(
            url_senza_password("host=/tmp user=pdd"),
            "host=/tmp user=pdd"
        );
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let v: Vec<u32> = MIGRAZIONI.iter().map(|m| m.0).collect();
        assert!(
            v.windows(2).all(|w| w[0] < w[1]) && v.first() == Some(&1),
            "{v:?}"
        );
    }
}
