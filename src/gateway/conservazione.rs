//! Retention (`[store]`) and the store's care through a running gateway. A background task
//! purges, at start and every `purge_every_secs`, exchanges older than `retention_days` (with
//! their raw messages and ids index entries) and duplicate-filter entries older than
//! `duplicate_window_days` whose busta has expired: a replay of it is refused as expired
//! (EGOV_IT_301) before the filter is asked. Diagnostic messages go with the exchanges (older
//! than `retention_days`). Moduli, outbox entries and partners are never
//! purged. `pdd store …` reaches the same operations through `/admin/store/…` while the gateway
//! holds the store.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone};
use tracing::{info, warn};

use super::diagnostici::{Diagnostico, Severita};
use super::Gateway;
use crate::config::Config;
use crate::egov::id::Identificatore;
use crate::egov::Busta;
use crate::store::care::{PurgeLimits, PurgeReport};
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

impl Gateway {
    /// Purges what is past retention now; what went.
    pub async fn purga(&self) -> Result<PurgeReport, StoreError> {
        let l = limiti(&self.config, self.now());
        let r = self.store.purge(&l).await?;
        if r.removed() > 0 {
            self.store.flush().await?;
            info!(
                exchanges = r.exchanges,
                raw_pieces = r.raw_pieces,
                ids = r.ids,
                dup = r.dup,
                diagnostici = r.diagnostici,
                moduli_pieces = r.moduli_pieces,
                "store purged (retention)"
            );
            self.diagnostica(Diagnostico::new(
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
            self.diagnostica(Diagnostico::new(
                Severita::Fatal,
                "Conservazione",
                "PDD_STORE",
                "conservazione interrotta a un record illeggibile: eseguire pdd store check",
            ))
            .await;
        }
        Ok(r)
    }

    /// `/admin/store/…`, loopback only (see `pdd store`): `POST /admin/store/backup`
    /// (`{"dir": ABSOLUTE PATH}`, answers the manifest), `GET /admin/store/stats`,
    /// `GET /admin/store/check`, `POST /admin/store/purge`. None for other paths.
    pub async fn admin_store(
        &self,
        method: &hyper::Method,
        path: &str,
        body: &[u8],
    ) -> Option<(u16, serde_json::Value)> {
        use hyper::Method;
        let errore = |status: u16, e: String| (status, serde_json::json!({ "error": e }));
        let esito = |r: Result<serde_json::Value, StoreError>| match r {
            Ok(v) => (200, v),
            Err(e) => errore(500, e.to_string()),
        };
        Some(match (method, path) {
            (&Method::POST, "/admin/store/backup") => {
                let dir = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["dir"].as_str().map(PathBuf::from));
                let Some(dir) = dir.filter(|d| d.is_absolute()) else {
                    return Some(errore(400, "{\"dir\": an absolute path}".into()));
                };
                let t = std::time::Instant::now();
                let dove = dir.display().to_string();
                let r = esito(
                    self.store
                        .backup(&dir, self.clock.as_ref())
                        .await
                        .map(|m| json(&m)),
                );
                if r.0 == 200 {
                    info!(dir = %dove, ms = t.elapsed().as_millis() as u64, "store backed up");
                }
                r
            }
            (&Method::GET, "/admin/store/stats") => {
                esito(self.store.stats().await.map(|s| json(&s)))
            }
            (&Method::GET, "/admin/store/check") => {
                esito(self.store.check().await.map(|c| json(&c)))
            }
            (&Method::POST, "/admin/store/purge") => match self.purga().await {
                Ok(r) => (200, json(&r)),
                Err(e) => errore(500, e.to_string()),
            },
            (_, p) if p.starts_with("/admin/store/") => errore(404, format!("no {method} {p}")),
            _ => return None,
        })
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Purges at start and every `[store] purge_every_secs` until `stop`; nothing when retention is
/// off for both exchanges and the duplicate filter.
pub async fn worker(gw: Arc<Gateway>, stop: impl Future<Output = ()>) {
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
    loop {
        if let Err(e) = gw.purga().await {
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
