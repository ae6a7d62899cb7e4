//! Group commit: one thread makes the store durable for every writer that asked since its last
//! flush began. Each exchange still waits for a flush that began after its own writes, but
//! under load many share one fsync instead of queueing one each (and sled's own `flush_async`,
//! called by many tasks at once, was seen to hang).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tokio::sync::watch;

use crate::store::{Result, StoreError};

#[derive(Default)]
struct Richieste {
    /// Tickets handed out (one per `durevole` call).
    chieste: u64,
    /// The last ticket the running (or last) flush covers.
    avviate: u64,
    chiuso: bool,
}

struct Condiviso {
    richieste: Mutex<Richieste>,
    sveglia: Condvar,
    /// The last ticket made durable, and the error of the flush that covered it, if any.
    fatte: watch::Sender<(u64, Option<Arc<str>>)>,
}

pub(super) struct GroupCommit {
    c: Arc<Condiviso>,
    filo: Option<JoinHandle<()>>,
}

impl GroupCommit {
    pub(super) fn avvia(db: sled::Db) -> std::io::Result<GroupCommit> {
        let c = Arc::new(Condiviso {
            richieste: Mutex::new(Richieste::default()),
            sveglia: Condvar::new(),
            fatte: watch::channel((0, None)).0,
        });
        let c2 = c.clone();
        let filo = std::thread::Builder::new()
            .name("pdd-commit".into())
            .spawn(move || ciclo(&c2, &db))?;
        Ok(GroupCommit {
            c,
            filo: Some(filo),
        })
    }

    /// Resolves once everything written before the call is on disk.
    pub(super) async fn durevole(&self) -> Result<()> {
        let mut rx = self.c.fatte.subscribe();
        let biglietto = {
            let mut r = self.c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            if r.chiuso {
                return Err(StoreError::Backend("store closing".into()));
            }
            r.chieste += 1;
            self.c.sveglia.notify_one();
            r.chieste
        };
        let fatto = rx
            .wait_for(|(fatte, _)| *fatte >= biglietto)
            .await
            .map_err(|_| StoreError::Backend("the commit thread stopped".into()))?;
        match &fatto.1 {
            Some(e) => Err(StoreError::Backend(format!("flush: {e}"))),
            None => Ok(()),
        }
    }
}

/// Flushes begin at most this often. A writer after a quiet spell is flushed at once; under
/// load, what arrives within this window shares one flush (each flush is an fsync plus sled's
/// own thread hand-offs, which cost more CPU than the wait costs latency).
const RITMO: std::time::Duration = std::time::Duration::from_micros(1000);

fn ciclo(c: &Condiviso, db: &sled::Db) {
    let mut ultimo: Option<std::time::Instant> = None;
    loop {
        {
            let mut r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            while r.chieste == r.avviate && !r.chiuso {
                r = c.sveglia.wait(r).unwrap_or_else(|e| e.into_inner());
            }
        }
        if let Some(u) = ultimo {
            let pausa = RITMO.saturating_sub(u.elapsed());
            if !pausa.is_zero() {
                std::thread::sleep(pausa);
            }
        }
        let fino_a = {
            let mut r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            while r.chieste == r.avviate && !r.chiuso {
                r = c.sveglia.wait(r).unwrap_or_else(|e| e.into_inner());
            }
            if r.chieste == r.avviate {
                return;
            }
            r.avviate = r.chieste;
            r.avviate
        };
        // Everyone who took a ticket up to `fino_a` wrote before this flush starts.
        let t0 = std::time::Instant::now();
        let esito = db.flush().err().map(|e| Arc::from(e.to_string()));
        ultimo = Some(std::time::Instant::now());
        tracing::trace!(
            fino_a,
            micros = t0.elapsed().as_micros() as u64,
            "group flush"
        );
        c.fatte.send_replace((fino_a, esito));
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        {
            let mut r = self.c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            r.chiuso = true;
            self.c.sveglia.notify_one();
        }
        if let Some(f) = self.filo.take() {
            let _ = f.join();
        }
    }
}
