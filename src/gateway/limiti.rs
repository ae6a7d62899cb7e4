//! The per-partner limit on the porta applicativa: how many exchanges one partner may have in
//! progress at once (`[limits] partner_concorrenza`). A flood from one partner is answered at
//! once with a Fault and never reaches the parser, the store or the services, so the others
//! keep being served.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Exchanges in progress, by partner.
#[derive(Default)]
pub struct InCorso(Arc<Mutex<HashMap<String, usize>>>);

/// Holds one place of a partner's allowance; gives it back when dropped.
pub struct Posto {
    mappa: Arc<Mutex<HashMap<String, usize>>>,
    partner: String,
}

impl InCorso {
    /// A place for `partner`, or None when it already has `limite` exchanges in progress
    /// (0: no limit).
    pub fn entra(&self, partner: &str, limite: usize) -> Option<Posto> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(partner.to_string()).or_insert(0);
        if limite > 0 && *n >= limite {
            return None;
        }
        *n += 1;
        Some(Posto {
            mappa: self.0.clone(),
            partner: partner.to_string(),
        })
    }

    /// Exchanges in progress for a partner.
    pub fn quanti(&self, partner: &str) -> usize {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.get(partner).copied().unwrap_or(0)
    }
}

impl Drop for Posto {
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
        let c = InCorso::default();
        let a1 = c.entra("SPC/EMILIA", 2).unwrap();
        let _a2 = c.entra("SPC/EMILIA", 2).unwrap();
        assert!(c.entra("SPC/EMILIA", 2).is_none(), "third at once");
        let _b = c
            .entra("SPC/LAZIO", 2)
            .expect("another partner still served");
        drop(a1);
        assert_eq!(c.quanti("SPC/EMILIA"), 1);
        let _a3 = c.entra("SPC/EMILIA", 2).expect("a place was given back");
        assert!(c.entra("SPC/EMILIA", 0).is_some(), "0: no limit");
    }
}
