//! The validity sweeper (document §4.2, §4.3): a Candidatura is deactivated 45 days after its
//! insertion or last change, a Vacancy 30 days after (or at its own earlier expiry). State-based,
//! so running it twice, or after a restart, changes nothing more.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};
use tracing::{info, warn};

use super::Shared;
use crate::modulo::{validita, Tipo};
use crate::store::{StatoModulo, StoreError, VistaSommario, Write};

/// The last day a modulo is valid: its applied expiry, and at most its validity after its last
/// change (`aggiornata`).
pub fn ultimo_giorno(
    scadenza: Option<NaiveDate>,
    aggiornata: DateTime<FixedOffset>,
    t: Tipo,
) -> Option<NaiveDate> {
    let da_scadenza = scadenza;
    let da_modifica = validita(t).and_then(|g| {
        aggiornata
            .date_naive()
            .checked_add_days(chrono::Days::new(g))
    });
    match (da_scadenza, da_modifica) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The validity sweeper.
pub struct Scadenze {
    s: Arc<Shared>,
}

impl Scadenze {
    pub(super) fn new(s: Arc<Shared>) -> Scadenze {
        Scadenze { s }
    }

    /// Deactivates the active moduli past their validity; how many. Candidates come from the
    /// index; each is read again and changed under the moduli lock, so an update accepted
    /// meanwhile is never overwritten.
    pub async fn disattiva_scaduti(&self) -> Result<usize, StoreError> {
        let oggi = self.s.now().date_naive();
        let scaduto = |scadenza: Option<NaiveDate>, aggiornata: DateTime<FixedOffset>, t: Tipo| {
            ultimo_giorno(scadenza, aggiornata, t).is_some_and(|u| oggi > u)
        };
        let mut candidati = Vec::new();
        for t in [Tipo::Candidatura, Tipo::Vacancy] {
            let scaduti = self
                .s
                .store
                .sommari(t, &|l: &dyn VistaSommario| {
                    l.stato() == StatoModulo::Attivo && scaduto(l.scadenza(), l.aggiornata(), t)
                })
                .await?;
            candidati.extend(scaduti.iter().map(|l| (t, l.codice.clone())));
        }
        let mut n = 0;
        for (t, codice) in &candidati {
            // Each read again and changed under its lock: an update accepted meanwhile (on
            // any node) is never overwritten.
            let mut stato = self.s.store.lock_moduli(&[codice.as_str()]).await?;
            let Some(mut m) = self.s.store.modulo(*t, codice).await? else {
                continue;
            };
            if m.stato == StatoModulo::Attivo && scaduto(m.scadenza, m.updated_at, *t) {
                m.stato = StatoModulo::Scaduto;
                stato
                    .apply(self.s.store.as_ref(), vec![Write::Modulo(m)])
                    .await?;
                n += 1;
            }
        }
        if n > 0 {
            self.s.store.flush().await?;
            info!(count = n, oggi = %oggi, "expired moduli deactivated");
            self.s
                .diagnostica(super::diagnostici::Diagnostico::new(
                    super::diagnostici::Severita::InfoIntegration,
                    "Scadenze",
                    "PDD_SCADENZE",
                    format!("moduli scaduti disattivati: {}", n),
                ))
                .await;
        }
        Ok(n)
    }
}

/// Runs the sweeper at start and every `[cliclavoro] expiry_sweep_every_secs` until `stop`.
pub async fn worker(sc: Arc<Scadenze>, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let every = Duration::from_secs(sc.s.config.cliclavoro.expiry_sweep_every_secs.max(1));
    // One node of a cluster sweeps at a time; another takes over when it dies.
    let ttl = (every.as_millis() as i64 * 3).max(sc.s.config.cluster.lease_secs as i64 * 1000);
    loop {
        let now = sc.s.now().timestamp_millis();
        // (A store error is met again by the sweep below, which says so.)
        if let Ok(false) = sc.s.store.lease("scadenze", &sc.s.nodo, now, ttl).await {
            tracing::debug!("expiry sweep: another node sweeps");
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = &mut stop => return,
            }
            continue;
        }
        if let Err(e) = sc.disattiva_scaduti().await {
            warn!(error = %e, "expiry sweep failed");
            sc.s.diagnostica(super::diagnostici::Diagnostico::new(
                super::diagnostici::Severita::Fatal,
                "Scadenze",
                "PDD_STORE",
                "controllo delle scadenze non riuscito: lo store non risponde",
            ))
            .await;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}
