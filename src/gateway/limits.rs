//! The per-partner limit on the porta applicativa: how many exchanges one partner may have in
//! progress at once (`[limits] partner_concurrency`). A flood from one partner is answered at
//! once with a Fault and never reaches the parser, the store or the services, so the others
//! keep being served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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

#[cfg(test)]
mod tests {
    use super::*;

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
