//! Identificatore generation: one counter per (CodAmm, CodPdD), reset every minute, handed out
//! from blocks reserved durably in the store so that no id is ever issued twice, also across a
//! restart within the same minute.

use std::collections::HashMap;

use chrono::NaiveDateTime;

use crate::egov::id;
use crate::store::{Contatore, Store, StoreError};

/// Ids reserved per store round-trip. A restart skips at most this many numbers.
const BLOCK: u32 = 1000;

#[derive(Default)]
struct Cursor {
    minute: String,
    next: u32,
    end: u32,
}

pub struct IdGenerator {
    node: Option<String>,
    /// Held across a block's reservation: ids of a porta wait for it (once per block).
    cursors: tokio::sync::Mutex<HashMap<(String, String), Cursor>>,
}

impl IdGenerator {
    pub fn new(node: Option<String>) -> IdGenerator {
        IdGenerator {
            node,
            cursors: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub async fn next(
        &self,
        store: &dyn Store,
        cod_amm: &str,
        cod_pdd: &str,
        now: NaiveDateTime,
    ) -> Result<String, StoreError> {
        let minute = id::minute_key(now);
        let capacity = id::capacity(self.node.as_ref().map_or(0, |n| n.len()));
        let mut cursors = self.cursors.lock().await;
        let c = cursors
            .entry((cod_amm.to_string(), cod_pdd.to_string()))
            .or_default();
        if c.minute != minute || c.next >= c.end {
            let contatore = Contatore {
                cod_amm,
                cod_pdd,
                minuto: &minute,
                nodo: self.node.as_deref(),
            };
            let first = store.reserve_ids(contatore, BLOCK, capacity).await?;
            c.minute = minute;
            c.next = first;
            c.end = (first + BLOCK).min(capacity + 1);
        }
        let n = c.next;
        c.next += 1;
        Ok(id::format(cod_amm, cod_pdd, self.node.as_deref(), n, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SledStore;
    use std::collections::HashSet;

    #[tokio::test]
    async fn unique_across_restart_in_the_same_minute() {
        let p = std::env::temp_dir().join(format!("pdd-ids-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let now =
            NaiveDateTime::parse_from_str("2024-05-02 10:15:30", "%Y-%m-%d %H:%M:%S").unwrap();
        let mut seen = HashSet::new();
        for _ in 0..3 {
            let store = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
            let g = IdGenerator::new(None);
            for _ in 0..1500 {
                assert!(seen.insert(g.next(&store, "A", "ASPCoopIT", now).await.unwrap()));
            }
        }
        let g = IdGenerator::new(Some("3".into()));
        let store = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
        let later = now + chrono::Duration::minutes(1);
        assert_eq!(
            g.next(&store, "A", "ASPCoopIT", later).await.unwrap(),
            "A_ASPCoopIT_3000001_2024-05-02_10:16"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&p);
    }
}
