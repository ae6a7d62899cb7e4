//! Retention (`[store]`) and the store's care through a running gateway. A background task
//! purges, at start and every `purge_every_secs`, exchanges older than `retention_days` (with
//! their raw messages and ids index entries) and duplicate-filter entries older than
//! `duplicate_window_days` whose busta has expired: a replay of it is refused as expired
//! (EGOV_IT_301) before the filter is asked. Diagnostic messages go with the exchanges (older
//! than `retention_days`). Moduli, outbox entries and partners are never
//! purged. `pdd store …` reaches the same operations through the server's `/admin/store/…`
//! while the gateway holds the store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use tracing::{info, warn};

use super::diagnostici::{Diagnostico, Severita};
use super::Shared;
use crate::config::Config;
use crate::egov::id::Identificatore;
use crate::egov::Busta;
use crate::store::care::{CheckReport, Manifest, PurgeLimits, PurgeReport, Stats};
use crate::store::StoreError;

const MS_MINUTO: i64 = 60_000;
const MS_GIORNO: i64 = 86_400_000;

/// A busta's expiry is checked against our clock; entries are kept this much longer.
const MARGINE_MS: i64 = 10 * MS_MINUTO;

/// When a busta expires (ms since the epoch), as the validator judges it: its Scadenza, else
/// `scadenza_minuti` after the later of its OraRegistrazione and its Identificatore's minute.
/// Local times are read in `offset` (the gateway's, at receipt).
pub fn scadenza_busta(b: &Busta, scadenza_minuti: i64, offset: FixedOffset) -> Option<i64> {
    let finestra = chrono::Duration::minutes(scadenza_minuti);
    let locale = b.scadenza.or_else(|| {
        let da_ora = b.ora_registrazione.as_ref().map(|o| o.ora + finestra);
        let da_id =
            b.id.as_deref()
                .and_then(|i| Identificatore::parse(i).ok())
                .map(|id| id.minute() + chrono::Duration::minutes(1) + finestra);
        da_ora.max(da_id)
    })?;
    offset
        .from_local_datetime(&locale)
        .single()
        .map(|t| t.timestamp_millis())
}

/// The duplicate filter's window in minutes: `duplicate_window_days`, never shorter than the
/// busta's own expiry window (0: for ever).
fn finestra_duplicati_minuti(config: &Config) -> Option<i64> {
    let giorni = config.store.duplicate_window_days;
    (giorni > 0).then(|| {
        (giorni as i64 * 1440)
            .max(config.busta.scadenza_minuti + config.busta.tolleranza_futuro_minuti.max(0))
    })
}

/// Free bytes of the file system holding `path` (None: unknown).
pub use crate::store::spazio_libero;

/// The free space of the data folder under `[store] min_free_mb`: the warning that says so.
pub fn avviso_spazio(config: &Config) -> Option<String> {
    if config.store.engine != crate::config::Engine::Sled || config.store.min_free_mb == 0 {
        return None;
    }
    let libero = spazio_libero(&config.data)?;
    let soglia = config.store.min_free_mb << 20;
    (libero < soglia).then(|| {
        format!(
            "free space for the store is low: {} MiB left in {} ([store] min_free_mb = {})",
            libero >> 20,
            config.data.display(),
            config.store.min_free_mb
        )
    })
}

/// Under this much free space the embedded store cannot take an exchange (one exchange with
/// its raw messages, a log buffer of sled's): `/health` answers 503.
const SPAZIO_MINIMO: u64 = 1 << 20;

/// The data folder's file system is (all but) full: what `/health` says, with 503.
pub fn spazio_esaurito(config: &Config) -> Option<String> {
    if config.store.engine != crate::config::Engine::Sled {
        return None;
    }
    let libero = spazio_libero(&config.data)?;
    (libero < SPAZIO_MINIMO).then(|| {
        format!(
            "no space left for the store: {} KiB free in {}",
            libero >> 10,
            config.data.display()
        )
    })
}

/// Watches the data folder's free space: warns in the log when it falls under
/// `[store] min_free_mb`, and says when it is back.
pub async fn sorveglia_spazio(s: Arc<Shared>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut basso = false;
    loop {
        match avviso_spazio(&s.config) {
            Some(a) if !basso => {
                warn!("{a}");
                basso = true;
            }
            None if basso => {
                info!("free space for the store is above [store] min_free_mb again");
                basso = false;
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            _ = &mut stop => return,
        }
    }
}

/// What retention removes at `now`.
pub fn limiti(config: &Config, now: DateTime<FixedOffset>) -> PurgeLimits {
    let ora = now.timestamp_millis();
    let giorni = config.store.retention_days;
    PurgeLimits {
        exchanges_before_ms: (giorni > 0).then(|| ora - giorni as i64 * MS_GIORNO),
        dup_before_ms: finestra_duplicati_minuti(config).map(|m| ora - m * MS_MINUTO),
        expired_before_ms: ora - MARGINE_MS,
    }
}

/// The store's care: retention, backup, statistics, the full check.
pub struct Care {
    s: Arc<Shared>,
}

impl Care {
    pub(super) fn new(s: Arc<Shared>) -> Care {
        Care { s }
    }

    /// Purges what is past retention now; what went.
    pub async fn purga(&self) -> Result<PurgeReport, StoreError> {
        let l = limiti(&self.s.config, self.s.now());
        let r = self.s.store.purge(&l).await?;
        if r.removed() > 0 {
            self.s.store.flush().await?;
            info!(
                exchanges = r.exchanges,
                raw_pieces = r.raw_pieces,
                ids = r.ids,
                dup = r.dup,
                diagnostici = r.diagnostici,
                moduli_pieces = r.moduli_pieces,
                log_segments = r.log_segments,
                "store purged (retention)"
            );
            self.s.diagnostica(Diagnostico::new(
                Severita::InfoIntegration,
                "Conservazione",
                "PDD_CONSERVAZIONE",
                format!(
                    "conservazione: rimossi {} scambi, {} voci del filtro duplicati, {} diagnostici",
                    r.exchanges, r.dup, r.diagnostici
                ),
            )).await;
        }
        if let Some(s) = &r.stopped {
            warn!("store purge stopped at an unreadable record ({s}): run pdd store check");
            self.s
                .diagnostica(Diagnostico::new(
                    Severita::Fatal,
                    "Conservazione",
                    "PDD_STORE",
                    "conservazione interrotta a un record illeggibile: eseguire pdd store check",
                ))
                .await;
        }
        Ok(r)
    }

    /// Copies the store into `dir` (see [`crate::store::care`]), the gateway running.
    pub async fn backup(&self, dir: &std::path::Path) -> Result<Manifest, StoreError> {
        let t = std::time::Instant::now();
        let m = self.s.store.backup(dir, self.s.clock.as_ref()).await?;
        info!(dir = %dir.display(), ms = t.elapsed().as_millis() as u64, "store backed up");
        Ok(m)
    }

    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.s.store.stats().await
    }

    pub async fn check(&self) -> Result<CheckReport, StoreError> {
        self.s.store.check().await
    }
}

/// Purges at start and every `[store] purge_every_secs` until `stop`; nothing when retention is
/// off for both exchanges and the duplicate filter.
pub async fn worker(care: Arc<Care>, stop: impl Future<Output = ()>) {
    let gw = &care.s;
    let c = &gw.config.store;
    if c.retention_days == 0 && c.duplicate_window_days == 0 {
        return;
    }
    if c.duplicate_window_days > 0
        && (c.duplicate_window_days as i64) * 1440 < gw.config.busta.scadenza_minuti
    {
        warn!(
            duplicate_window_days = c.duplicate_window_days,
            scadenza_minuti = gw.config.busta.scadenza_minuti,
            "[store] duplicate_window_days is shorter than the busta expiry window: the expiry window is used"
        );
    }
    tokio::pin!(stop);
    let every = Duration::from_secs(c.purge_every_secs.max(1));
    // One node of a cluster purges at a time; another takes over when it dies.
    let ttl = (every.as_millis() as i64 * 3).max(gw.config.cluster.lease_secs as i64 * 1000);
    loop {
        let now = gw.now().timestamp_millis();
        if let Ok(false) = gw.store.lease("care", &gw.nodo, now, ttl).await {
            tracing::debug!("retention: another node purges");
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            continue;
        }
        if let Err(e) = care.purga().await {
            warn!(error = %e, "store purge failed");
            gw.diagnostica(Diagnostico::new(
                Severita::Fatal,
                "Conservazione",
                "PDD_STORE",
                "conservazione non riuscita: lo store non risponde",
            ))
            .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}
