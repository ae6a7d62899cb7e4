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
    fatte: watch::Sender<(u64, Option<StoreError>)>,
    /// Flushes made (for tests: how well writers are grouped).
    flush: std::sync::atomic::AtomicU64,
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
            flush: Default::default(),
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
                return Err(StoreError::Closed);
            }
            r.chieste += 1;
            self.c.sveglia.notify_one();
            r.chieste
        };
        let fatto = rx
            .wait_for(|(fatte, _)| *fatte >= biglietto)
            .await
            .map_err(|_| StoreError::Closed)?;
        match &fatto.1 {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// Under load, flushes begin at most this often, and what arrives meanwhile shares one flush
/// (each flush is an fsync plus sled's own thread hand-offs, which cost more CPU than the wait
/// costs latency). A lone writer (the last flush covered one) is flushed at once: waiting
/// would only delay it.
const RITMO: std::time::Duration = std::time::Duration::from_micros(1000);

fn ciclo(c: &Condiviso, db: &sled::Db) {
    // When the last flush ended, and whether it covered more than one writer.
    let mut ultimo: Option<(std::time::Instant, bool)> = None;
    loop {
        {
            let mut r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            while r.chieste == r.avviate && !r.chiuso {
                r = c.sveglia.wait(r).unwrap_or_else(|e| e.into_inner());
            }
        }
        if let Some((u, true)) = ultimo {
            let pausa = RITMO.saturating_sub(u.elapsed());
            if !pausa.is_zero() {
                std::thread::sleep(pausa);
            }
        }
        let (fino_a, gruppo) = {
            // Only this thread moves `avviate`: what was pending above still is (nothing
            // pending means the store is closing).
            let mut r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            if r.chieste == r.avviate {
                return;
            }
            let da = r.avviate;
            r.avviate = r.chieste;
            (r.avviate, r.avviate - da > 1)
        };
        // Everyone who took a ticket up to `fino_a` wrote before this flush starts.
        let t0 = std::time::Instant::now();
        let esito = db.flush().err().map(super::codec::be);
        c.flush.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ultimo = Some((std::time::Instant::now(), gruppo));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_writers_share_flushes_and_each_waits_for_one_after_its_write() {
        let dir = crate::store::sled_store::tests::tmp("commit");
        let db = sled::Config::new().path(&dir).open().unwrap();
        let gc = Arc::new(GroupCommit::avvia(db.clone()).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let n = 200u64;
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..n {
                let (gc, db) = (gc.clone(), db.clone());
                tasks.push(tokio::spawn(async move {
                    db.insert(i.to_be_bytes(), &[1u8; 100][..]).unwrap();
                    gc.durevole().await.unwrap();
                    // Answered only once a flush that began after the write has ended.
                    gc.c.fatte.borrow().0
                }));
            }
            for t in tasks {
                assert!(t.await.unwrap() >= 1);
            }
        });
        let flush = gc.c.flush.load(std::sync::atomic::Ordering::Relaxed);
        assert!(flush >= 1 && flush < n, "{flush} flushes for {n} writers");
        // Every ticket handed out was covered.
        let r = gc.c.richieste.lock().unwrap();
        assert_eq!((r.chieste, r.avviate), (n, n));
        drop(r);
        // A lone writer is not held back by the pacing meant for groups.
        rt.block_on(async {
            for _ in 0..3 {
                db.insert(b"solo", &b"x"[..]).unwrap();
                let t = std::time::Instant::now();
                gc.durevole().await.unwrap();
                assert!(t.elapsed() < std::time::Duration::from_secs(5));
            }
        });
        drop(gc);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
