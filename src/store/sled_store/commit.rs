//! Group commit through the journal ([`super::journal`]): one thread appends the entries of
//! every writer that asked since its last write, makes them durable with one `fdatasync`, then
//! applies them to sled's trees in that order and answers the writers. Under load many share
//! one write and one sync instead of queueing one each; a lone writer is served at once. The
//! same thread makes sled durable and records where the log stood at a checkpoint: when
//! [`SOGLIA`] bytes were written since the last, when asked ([`GroupCommit::checkpoint`]), and
//! when the store closes.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

use tokio::sync::watch;

use super::journal::{self, Alberi};
use super::registro::{self, Coda, Posizione};
use super::{indicizza, Index};
use crate::modulo::Tipo;
use crate::store::{DupEntry, Result, StoreError};

/// A writer's entry, with what the index of moduli takes from it once it is applied.
pub(super) struct Voce {
    pub(super) byte: Vec<u8>,
    pub(super) indice: Vec<(Tipo, String, Option<super::indice::Compatto>)>,
    /// The claim in flight the entry settles (its `dup` key and entry as written): the writer
    /// lets go of it once the entry is applied.
    pub(super) saldata: Option<(Vec<u8>, DupEntry)>,
}

#[derive(Default)]
struct Richieste {
    /// Tickets handed out (one per entry, or per checkpoint asked).
    chieste: u64,
    /// The last ticket the running (or last) write covers.
    avviate: u64,
    /// The entries of the tickets after `avviate`, in order.
    coda: Vec<Voce>,
    /// A checkpoint was asked since the last write began.
    checkpoint: bool,
    chiuso: bool,
}

/// What the thread has done, for the writers waiting.
#[derive(Clone, Default)]
struct Fatto {
    /// The last ticket whose entry is durable (or whose write failed: see `falliti`).
    scritte: u64,
    /// The last ticket a checkpoint covered, and its error.
    salvate: u64,
    errore_checkpoint: Option<StoreError>,
}

struct Condiviso {
    richieste: Mutex<Richieste>,
    sveglia: Condvar,
    fatte: watch::Sender<Fatto>,
    /// The tickets of the last writes that failed (none of their entries was applied), and why.
    falliti: Mutex<VecDeque<(u64, u64, StoreError)>>,
    /// The first failure of sled under entries already durable in the journal: the store must
    /// be reopened (which applies the journal again); sled refuses every write after one.
    guasto_alberi: Mutex<Option<StoreError>>,
    /// Writes made (for tests: how well writers are grouped).
    scritture: std::sync::atomic::AtomicU64,
}

pub(super) struct GroupCommit {
    c: Arc<Condiviso>,
    filo: Option<JoinHandle<()>>,
}

/// The bytes written to the log past which the thread makes a checkpoint: what a crash leaves
/// to apply again at open (a second or so).
pub(super) const SOGLIA: u64 = 32 << 20;

impl GroupCommit {
    /// Starts the thread on the log's end `coda` (everything before it applied) for the trees
    /// `alberi`.
    pub(super) fn avvia(
        alberi: Alberi,
        coda: Coda,
        indice: Arc<RwLock<Index>>,
    ) -> std::io::Result<GroupCommit> {
        let c = Arc::new(Condiviso {
            richieste: Mutex::new(Richieste::default()),
            sveglia: Condvar::new(),
            fatte: watch::channel(Fatto::default()).0,
            falliti: Mutex::new(VecDeque::new()),
            guasto_alberi: Mutex::new(None),
            scritture: Default::default(),
        });
        let c2 = c.clone();
        let filo = std::thread::Builder::new()
            .name("pdd-commit".into())
            .spawn(move || ciclo(&c2, &alberi, coda, &indice))?;
        Ok(GroupCommit {
            c,
            filo: Some(filo),
        })
    }

    /// A ticket for an entry, or with none for a barrier (`checkpoint`: and a checkpoint).
    fn accoda(&self, voce: Option<Voce>, checkpoint: bool) -> Result<u64> {
        let mut r = self.c.richieste.lock().unwrap_or_else(|e| e.into_inner());
        if r.chiuso {
            return Err(StoreError::Closed);
        }
        r.chieste += 1;
        r.coda.extend(voce);
        r.checkpoint |= checkpoint;
        self.c.sveglia.notify_one();
        Ok(r.chieste)
    }

    /// Resolves once the entry is durable in the journal and applied to the trees.
    pub(super) async fn scrivi(&self, voce: Voce) -> Result<()> {
        let mut rx = self.c.fatte.subscribe();
        let biglietto = self.accoda(Some(voce), false)?;
        rx.wait_for(|f| f.scritte >= biglietto)
            .await
            .map_err(|_| StoreError::Closed)?;
        self.esito(biglietto)
    }

    /// [`GroupCommit::scrivi`] for a thread that may block (the purge's): waits polling, a
    /// millisecond at a time.
    pub(super) fn scrivi_bloccando(&self, voce: Voce) -> Result<()> {
        let rx = self.c.fatte.subscribe();
        let biglietto = self.accoda(Some(voce), false)?;
        while rx.borrow().scritte < biglietto {
            if self.filo.as_ref().is_some_and(|f| f.is_finished()) {
                return Err(StoreError::Closed);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.esito(biglietto)
    }

    /// Whether the write that covered `biglietto` (done by now) failed.
    fn esito(&self, biglietto: u64) -> Result<()> {
        let falliti = self.c.falliti.lock().unwrap_or_else(|e| e.into_inner());
        match falliti
            .iter()
            .find(|(da, a, _)| (*da..=*a).contains(&biglietto))
        {
            Some((_, _, e)) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Resolves once the entries queued before the call are written and applied.
    pub(super) async fn barriera(&self) -> Result<()> {
        let mut rx = self.c.fatte.subscribe();
        let biglietto = self.accoda(None, false)?;
        rx.wait_for(|f| f.scritte >= biglietto)
            .await
            .map_err(|_| StoreError::Closed)?;
        Ok(())
    }

    /// Resolves once everything written before the call is durable in sled's own files
    /// (and the checkpoint past it).
    pub(super) async fn checkpoint(&self) -> Result<()> {
        let mut rx = self.c.fatte.subscribe();
        let biglietto = self.accoda(None, true)?;
        let fatto = rx
            .wait_for(|f| f.salvate >= biglietto)
            .await
            .map_err(|_| StoreError::Closed)?;
        match &fatto.errore_checkpoint {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// sled's failure under entries already durable in the journal, if there was one.
    pub(super) fn guasto_alberi(&self) -> Option<StoreError> {
        self.c
            .guasto_alberi
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Under load, writes begin at most this often, and what arrives meanwhile shares one write
/// and one sync (each is a system call and a thread hand-off, which cost more CPU than the
/// wait costs latency). A lone writer (the last write covered one) is served at once: waiting
/// would only delay it.
const RITMO: std::time::Duration = std::time::Duration::from_micros(1000);

/// How many failed writes the writers can still look up.
const FALLITI: usize = 64;

fn ciclo(c: &Condiviso, alberi: &Alberi, mut coda: Coda, indice: &RwLock<Index>) {
    // When the last write ended, and whether it covered more than one writer.
    let mut ultimo: Option<(std::time::Instant, bool)> = None;
    // Bytes written since the last checkpoint.
    let mut dal_checkpoint: u64 = 0;
    let mut buf = Vec::new();
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
        let (da, fino_a, coda_voci, chiesto, chiuso) = {
            // Only this thread moves `avviate`.
            let mut r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            let da = r.avviate + 1;
            r.avviate = r.chieste;
            (
                da,
                r.avviate,
                std::mem::take(&mut r.coda),
                std::mem::take(&mut r.checkpoint),
                r.chiuso,
            )
        };
        let t0 = std::time::Instant::now();
        buf.clear();
        for v in &coda_voci {
            buf.extend_from_slice(&v.byte);
        }
        let mut scritto = true;
        let mut at = coda.posizione();
        if !buf.is_empty() {
            let esito = coda.aggiungi(&buf);
            c.scritture
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match esito {
                Ok(p) => {
                    at = p;
                    dal_checkpoint += buf.len() as u64;
                }
                Err(e) => {
                    // Nothing of this write may come back at the next open (the segment was
                    // cut back): its writers are told it failed.
                    scritto = false;
                    let mut f = c.falliti.lock().unwrap_or_else(|e| e.into_inner());
                    if f.len() == FALLITI {
                        f.pop_front();
                    }
                    f.push_back((da, fino_a, StoreError::io("journal write", e)));
                }
            }
        }
        if scritto && !coda_voci.is_empty() {
            let mut guasto = c.guasto_alberi.lock().unwrap_or_else(|e| e.into_inner());
            if guasto.is_none() {
                for v in coda_voci {
                    // Where the entry's operations lie in the log.
                    let pos = Posizione {
                        seg: at.seg,
                        off: at.off + journal::TESTA as u64,
                    };
                    at.off += v.byte.len() as u64;
                    if let Err(e) =
                        journal::applica(alberi, journal::Voce::operazioni(&v.byte), Some(pos))
                    {
                        tracing::error!(error = %e, "store: a journal entry not applied to sled: reopening the store applies it");
                        *guasto = Some(e);
                        break;
                    }
                    if !v.indice.is_empty() {
                        let mut i = indice.write().unwrap_or_else(|e| e.into_inner());
                        for (kind, code, s) in v.indice {
                            indicizza(&mut i, &kind, &code, s);
                        }
                    }
                }
            }
        }
        ultimo = Some((std::time::Instant::now(), fino_a > da));
        tracing::trace!(
            fino_a,
            micros = t0.elapsed().as_micros() as u64,
            "group commit"
        );
        if let Err(e) = coda.ruota_se_piena() {
            // The segment grows on; the next write tries again.
            tracing::error!(error = %e, "store: the log's next segment cannot be begun");
        }
        c.fatte.send_modify(|f| f.scritte = fino_a);
        if chiesto || chiuso || dal_checkpoint >= SOGLIA {
            let esito = checkpoint(c, alberi, coda.posizione());
            if esito.is_ok() {
                dal_checkpoint = 0;
            }
            c.fatte.send_modify(|f| {
                f.salvate = fino_a;
                f.errore_checkpoint = esito.err();
            });
        }
        if chiuso {
            let r = c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            if r.chieste == r.avviate {
                return;
            }
        }
    }
}

/// Makes sled durable with the log's position `fin_qui` (everything before it is applied); with
/// sled failed, leaves the checkpoint where it was, for the next open to apply the log from there.
fn checkpoint(c: &Condiviso, alberi: &Alberi, fin_qui: Posizione) -> Result<()> {
    if let Some(e) = c
        .guasto_alberi
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
    {
        return Err(e);
    }
    alberi
        .meta
        .insert(registro::DA, &fin_qui.codifica()[..])
        .map_err(super::codec::be)?;
    alberi.db.flush().map_err(super::codec::be)?;
    Ok(())
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        {
            let mut r = self.c.richieste.lock().unwrap_or_else(|e| e.into_inner());
            r.chiuso = true;
            // The last pass makes a checkpoint even with nothing pending.
            r.chieste += 1;
            r.checkpoint = true;
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
    use crate::store::sled_store::codec::albero;

    #[test]
    fn concurrent_writers_share_journal_writes_and_each_is_applied_before_it_is_answered() {
        let dir = crate::store::sled_store::tests::tmp("commit");
        let db = sled::Config::new().path(&dir).open().unwrap();
        let alberi = Alberi::apri(&db).unwrap();
        let coda = journal::apri(&alberi, &dir).unwrap();
        let meta = alberi.meta.clone();
        let gc = Arc::new(GroupCommit::avvia(alberi, coda, Default::default()).unwrap());
        let outbox = db.open_tree(albero::OUTBOX).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let n = 200u64;
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..n {
                let (gc, outbox) = (gc.clone(), outbox.clone());
                tasks.push(tokio::spawn(async move {
                    let mut v = journal::Voce::default();
                    v.put(albero::OUTBOX, &i.to_be_bytes(), &[1u8; 100]);
                    gc.scrivi(Voce {
                        byte: v.chiudi(),
                        indice: Vec::new(),
                        saldata: None,
                    })
                    .await
                    .unwrap();
                    // Answered only once applied.
                    outbox.contains_key(i.to_be_bytes()).unwrap()
                }));
            }
            for t in tasks {
                assert!(t.await.unwrap());
            }
        });
        let scritture = gc.c.scritture.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            scritture >= 1 && scritture < n,
            "{scritture} writes for {n} writers"
        );
        let r = gc.c.richieste.lock().unwrap();
        assert_eq!((r.chieste, r.avviate), (n, n));
        drop(r);
        let segmento = dir.join(registro::DIR).join("00000001.log");
        assert!(std::fs::metadata(&segmento).unwrap().len() > 200 * 100);
        // A lone writer is not held back by the pacing meant for groups; a checkpoint records
        // the log's end.
        rt.block_on(async {
            for _ in 0..3 {
                let mut v = journal::Voce::default();
                v.put(albero::OUTBOX, b"solo", b"x");
                let t = std::time::Instant::now();
                gc.scrivi(Voce {
                    byte: v.chiudi(),
                    indice: Vec::new(),
                    saldata: None,
                })
                .await
                .unwrap();
                assert!(t.elapsed() < std::time::Duration::from_secs(5));
            }
            gc.checkpoint().await.unwrap();
        });
        let da = Posizione::di(&meta.get(registro::DA).unwrap().unwrap()).unwrap();
        assert_eq!(
            da,
            Posizione {
                seg: 1,
                off: std::fs::metadata(&segmento).unwrap().len()
            }
        );
        drop(gc);
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
