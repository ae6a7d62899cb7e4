//! The per-partner limits: how many exchanges one partner may have in progress at once
//! (`[limits] partner_concurrency`), and its share of the memory for bodies in progress
//! ([`BudgetCorpi`]). A flood from one partner is answered at once with a Fault and never
//! reaches the parser, the store or the services, so the others keep being served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Exchanges in progress, by partner.
#[derive(Default)]
pub struct InFlight(Arc<Mutex<HashMap<String, usize>>>);

/// Holds one place of a partner's allowance; gives it back when dropped.
pub struct Slot {
    mappa: Arc<Mutex<HashMap<String, usize>>>,
    partner: String,
}

impl InFlight {
    /// A place for `partner`, or None when it already has `limite` exchanges in progress
    /// (0: no limit).
    pub fn enter(&self, partner: &str, limite: usize) -> Option<Slot> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(partner.to_string()).or_insert(0);
        if limite > 0 && *n >= limite {
            return None;
        }
        *n += 1;
        Some(Slot {
            mappa: self.0.clone(),
            partner: partner.to_string(),
        })
    }

    /// Exchanges in progress for a partner.
    pub fn count(&self, partner: &str) -> usize {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(partner).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.mappa.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.partner) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.partner);
            }
        }
    }
}

/// The memory for request bodies in progress (`[limits] max_bytes_in_flight`), shared so that
/// no partner can take it from the others: each holds at most its share
/// (`partner_bytes_in_flight`), and a partner that already has a body in progress may not take
/// the last `reserve_bytes_in_flight`, kept for partners with nothing in progress. A partner
/// over its share is refused at once; one that finds no room waits a little for it.
pub struct BudgetCorpi {
    totale: u64,
    per_partner: u64,
    riserva: u64,
    conti: Mutex<Conti>,
    liberato: tokio::sync::Notify,
}

#[derive(Default)]
struct Conti {
    usati: u64,
    per: HashMap<String, u64>,
}

/// Why a body found no room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Negato {
    /// The partner holds its whole share already.
    Quota { usati: u64, quota: u64 },
    /// No room left in the time allowed.
    Pieno,
}

/// Room held for one body; given back when dropped.
pub struct Prenotazione {
    budget: Arc<BudgetCorpi>,
    partner: String,
    byte: u64,
}

impl BudgetCorpi {
    /// `totale` bytes; each partner at most `per_partner` (never less than `corpo_max`, the
    /// largest body, so that any body can be received); `riserva` kept for partners with
    /// nothing in progress.
    pub fn new(totale: u64, per_partner: u64, riserva: u64, corpo_max: u64) -> BudgetCorpi {
        let totale = totale.max(1);
        BudgetCorpi {
            totale,
            per_partner: per_partner.max(corpo_max).min(totale),
            riserva: riserva.min(totale / 2),
            conti: Mutex::new(Conti::default()),
            liberato: tokio::sync::Notify::new(),
        }
    }

    fn prova(&self, partner: &str, n: u64) -> Result<bool, Negato> {
        let mut c = self.conti.lock().unwrap_or_else(|e| e.into_inner());
        let suoi = c.per.get(partner).copied().unwrap_or(0);
        if suoi + n > self.per_partner {
            return Err(Negato::Quota {
                usati: suoi,
                quota: self.per_partner,
            });
        }
        let limite = if suoi == 0 {
            self.totale
        } else {
            self.totale - self.riserva
        };
        if c.usati + n > limite {
            return Ok(false);
        }
        c.usati += n;
        *c.per.entry(partner.to_string()).or_insert(0) += n;
        Ok(true)
    }

    /// Room for `n` bytes of `partner`'s body, waiting up to `attesa` for it.
    pub async fn prenota(
        self: &Arc<Self>,
        partner: &str,
        n: u64,
        attesa: Duration,
    ) -> Result<Prenotazione, Negato> {
        let n = n.clamp(1, self.totale);
        let fino = tokio::time::Instant::now() + attesa;
        loop {
            let avviso = self.liberato.notified();
            if self.prova(partner, n)? {
                return Ok(Prenotazione {
                    budget: self.clone(),
                    partner: partner.to_string(),
                    byte: n,
                });
            }
            if tokio::time::timeout_at(fino, avviso).await.is_err() {
                return Err(Negato::Pieno);
            }
        }
    }

    /// Bytes held by a partner's bodies in progress.
    pub fn usati(&self, partner: &str) -> u64 {
        let c = self.conti.lock().unwrap_or_else(|e| e.into_inner());
        c.per.get(partner).copied().unwrap_or(0)
    }
}

impl Drop for Prenotazione {
    fn drop(&mut self) {
        {
            let mut c = self.budget.conti.lock().unwrap_or_else(|e| e.into_inner());
            c.usati -= self.byte;
            if let Some(p) = c.per.get_mut(&self.partner) {
                *p -= self.byte;
                if *p == 0 {
                    c.per.remove(&self.partner);
                }
            }
        }
        self.budget.liberato.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_partner_cannot_take_the_others_room_for_bodies() {
        const K: u64 = 1024;
        let b = Arc::new(BudgetCorpi::new(100 * K, 40 * K, 20 * K, 10 * K));
        let subito = Duration::from_millis(50);
        // EMILIA fills its share, and no more.
        let _e1 = b.prenota("SPC/EMILIA", 30 * K, subito).await.unwrap();
        let _e2 = b.prenota("SPC/EMILIA", 10 * K, subito).await.unwrap();
        assert_eq!(
            b.prenota("SPC/EMILIA", 1, subito).await.err(),
            Some(Negato::Quota {
                usati: 40 * K,
                quota: 40 * K
            })
        );
        // LAZIO takes its own share; with something in progress it may not take the reserve.
        let l1 = b.prenota("SPC/LAZIO", 40 * K, subito).await.unwrap();
        assert_eq!(
            b.prenota("SPC/LAZIO", 1, subito).await.err(),
            Some(Negato::Quota {
                usati: 40 * K,
                quota: 40 * K
            })
        );
        // 80 used: a third partner with nothing in progress still finds the reserve.
        let _t = b.prenota("SPC/TOSCANA", 20 * K, subito).await.unwrap();
        assert_eq!(
            b.prenota("SPC/UMBRIA", 1, subito).await.err(),
            Some(Negato::Pieno)
        );
        // Room given back wakes a waiting partner.
        let attesa = {
            let b = b.clone();
            tokio::spawn(async move {
                b.prenota("SPC/UMBRIA", 10 * K, Duration::from_secs(5))
                    .await
                    .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(l1);
        assert!(attesa.await.unwrap());
        assert_eq!(b.usati("SPC/LAZIO"), 0);
        // A share never smaller than the largest body.
        let piccolo = Arc::new(BudgetCorpi::new(100 * K, K, 0, 10 * K));
        assert!(piccolo.prenota("X", 10 * K, subito).await.is_ok());
    }

    #[test]
    fn one_partner_cannot_take_the_others_places() {
        let c = InFlight::default();
        let a1 = c.enter("SPC/EMILIA", 2).unwrap();
        let _a2 = c.enter("SPC/EMILIA", 2).unwrap();
        assert!(c.enter("SPC/EMILIA", 2).is_none(), "third at once");
        let _b = c
            .enter("SPC/LAZIO", 2)
            .expect("another partner still served");
        drop(a1);
        assert_eq!(c.count("SPC/EMILIA"), 1);
        let _a3 = c.enter("SPC/EMILIA", 2).expect("a place was given back");
        assert!(c.enter("SPC/EMILIA", 0).is_some(), "0: no limit");
    }
}
