//! Group commit: the records of concurrent exchanges go to the database together, in one
//! statement and one transaction whose commit waits for the disk, instead of one each. While a
//! group is being written the next one gathers, so the busier the node, the larger the groups
//! and the fewer the statements, commits and WAL flushes per exchange.

use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{mpsc, oneshot, Mutex};

use super::{pe, pool_err, seq_i, Result, StoreError};
use crate::store::Exchange;

/// An exchange's record, its Identificatori and the claim it settles (when it does), as rows.
struct Riga {
    seq: i64,
    received_ms: i64,
    meta: Vec<u8>,
    request: Vec<u8>,
    response: Vec<u8>,
    ids: Vec<String>,
    settle: Option<String>,
}

struct Richiesta {
    riga: Riga,
    esito: oneshot::Sender<Result<()>>,
}

/// At most this many exchanges in one statement (a group is built from what is waiting; this
/// only bounds one statement's size).
const MAX_GRUPPO: usize = 256;
/// Groups written at once: while one waits for the disk, the next is sent.
const SCRITTORI: usize = 2;

/// All the rows of a group as arrays, one parameter per column. The records are unique by
/// `seq` and the claims by id (the statement could not touch a row twice): a later one of a
/// group replaces an earlier one, as a later statement would have.
const SQL: &str = "WITH e AS (
        INSERT INTO pdd_exchanges (seq, received_ms, meta, request, response)
        SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])
        ON CONFLICT (seq) DO UPDATE SET received_ms = EXCLUDED.received_ms,
            meta = EXCLUDED.meta, request = EXCLUDED.request, response = EXCLUDED.response
     ), i AS (
        INSERT INTO pdd_ids (id, seq) SELECT * FROM unnest($6::text[], $7::bigint[])
        ON CONFLICT (id) DO NOTHING
     )
     INSERT INTO pdd_dup (id, seq, first_ms, repeats)
     SELECT id, seq, 0, 0 FROM unnest($8::text[], $9::bigint[]) AS d(id, seq)
     ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq";

/// The queue of records waiting to be committed, and the writers that empty it.
pub(super) struct Gruppo {
    coda: mpsc::UnboundedSender<Richiesta>,
}

impl Gruppo {
    /// Starts the writers on `handle` (the store's own runtime), on connections of `pool`
    /// (whose commits wait for the disk). They stop when the [`Gruppo`] is dropped.
    pub(super) fn avvia(pool: Pool, handle: &tokio::runtime::Handle) -> Gruppo {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..SCRITTORI {
            handle.spawn(scrittore(pool.clone(), rx.clone()));
        }
        Gruppo { coda: tx }
    }

    /// Commits the record of `ex` (and settles the claim `settle`) with whatever other records
    /// are waiting; returns once that commit is durable.
    pub(super) async fn commit(&self, ex: &Exchange, settle: Option<&str>) -> Result<()> {
        let riga = Riga {
            seq: seq_i(ex.seq)?,
            received_ms: ex.received_ms(),
            meta: super::json(ex),
            request: ex.request.clone(),
            response: ex.response.clone(),
            ids: super::ids_di(ex),
            settle: settle.map(str::to_string),
        };
        let (esito, ricevuto) = oneshot::channel();
        self.coda
            .send(Richiesta { riga, esito })
            .map_err(|_| StoreError::Closed)?;
        // The writer gone (the store's runtime stopped): closing.
        ricevuto.await.unwrap_or(Err(StoreError::Closed))
    }
}

async fn scrittore(pool: Pool, rx: Arc<Mutex<mpsc::UnboundedReceiver<Richiesta>>>) {
    loop {
        let mut gruppo = Vec::new();
        {
            // One writer gathers at a time: the other is writing its group meanwhile.
            let mut rx = rx.lock().await;
            let Some(prima) = rx.recv().await else {
                return;
            };
            gruppo.push(prima);
            while gruppo.len() < MAX_GRUPPO {
                match rx.try_recv() {
                    Ok(r) => gruppo.push(r),
                    Err(_) => break,
                }
            }
        }
        match scrivi(&pool, gruppo.iter().map(|r| &r.riga)).await {
            Ok(()) => {
                for r in gruppo {
                    let _ = r.esito.send(Ok(()));
                }
            }
            // The database unreachable: the same answer for all, at once.
            Err(e @ (StoreError::Unavailable(_) | StoreError::Closed)) => {
                for r in gruppo {
                    let _ = r.esito.send(Err(e.clone()));
                }
            }
            // A statement failed (nothing of the group was written): each record alone, so
            // that one record's fault is only its own.
            Err(e) if gruppo.len() == 1 => {
                for r in gruppo {
                    let _ = r.esito.send(Err(e.clone()));
                }
            }
            Err(_) => {
                for r in gruppo {
                    let esito = scrivi(&pool, std::iter::once(&r.riga)).await;
                    let _ = r.esito.send(esito);
                }
            }
        }
    }
}

/// One statement for the rows, committed (waiting for the disk).
async fn scrivi<'a>(pool: &Pool, righe: impl Iterator<Item = &'a Riga>) -> Result<()> {
    let mut seq = Vec::new();
    let mut ricevuto = Vec::new();
    let mut meta = Vec::new();
    let mut request = Vec::new();
    let mut response = Vec::new();
    let mut ids = Vec::new();
    let mut ids_seq = Vec::new();
    // A claim settled twice in one group: by the later record.
    let mut dup: std::collections::HashMap<&str, i64> = Default::default();
    // A later record of the same seq replaces an earlier one: the last of each, in order.
    let righe: Vec<&Riga> = righe.collect();
    let mut visti = std::collections::HashSet::new();
    let ultime: Vec<&Riga> = righe
        .iter()
        .rev()
        .filter(|r| visti.insert(r.seq))
        .copied()
        .collect();
    for r in ultime.into_iter().rev() {
        seq.push(r.seq);
        ricevuto.push(r.received_ms);
        meta.push(r.meta.as_slice());
        request.push(r.request.as_slice());
        response.push(r.response.as_slice());
        for id in &r.ids {
            ids.push(id.as_str());
            ids_seq.push(r.seq);
        }
        if let Some(id) = &r.settle {
            dup.insert(id.as_str(), r.seq);
        }
    }
    let (dup_id, dup_seq): (Vec<&str>, Vec<i64>) = dup.into_iter().unzip();
    let c = pool.get().await.map_err(pool_err)?;
    let st = c.prepare_cached(SQL).await.map_err(pe)?;
    c.execute(
        &st,
        &[
            &seq, &ricevuto, &meta, &request, &response, &ids, &ids_seq, &dup_id, &dup_seq,
        ],
    )
    .await
    .map_err(pe)?;
    Ok(())
}
