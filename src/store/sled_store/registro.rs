//! The log: the journal's entries ([`super::journal`]) kept in segment files,
//! `registro/NNNNNNNN.log`, instead of a file emptied at each checkpoint. The exchanges' records
//! and the moduli are not copied into sled: sled keeps where each lies in the log (a
//! [`Puntatore`], 24 bytes), so they are written to disk once, where sled wrote each value again
//! with every rewrite of its node and kept about 2.4 times what was live (docs/performance.md).
//!
//! A checkpoint makes sled durable and records in its `meta` tree where the log stood
//! ([`DA`]); at open the entries after that are applied again. A segment is removed once no
//! pointer names it and it lies wholly before the checkpoint (see `care`'s purge).

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::codec;
use crate::store::{Result, StoreError};

/// The log's directory, in the store's.
pub(super) const DIR: &str = "registro";

/// A segment is closed, and the next begun, once it holds this much (1 MiB in unit tests, so
/// that a few exchanges fill several).
#[cfg(not(test))]
pub(super) const SEGMENTO: u64 = 64 << 20;
#[cfg(test)]
pub(super) const SEGMENTO: u64 = 1 << 20;

/// The key in `meta` of the checkpoint: segment (u32 BE), offset (u64 BE) of the first entry
/// sled may not have.
pub(super) const DA: &[u8] = b"registro_da";

/// How a value kept in the log begins in sled (no record of the store begins so: see
/// `codec`'s markers), then segment, offset and length (LEB128), the CRC-32 (u32 LE), and for an
/// exchange the time it was received (LEB128, zigzag): about 16 bytes, 22 with the time.
const MARCA: [u8; 4] = *b"\xffRG2";

/// Where a value lies in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Puntatore {
    pub(super) seg: u32,
    pub(super) off: u64,
    pub(super) len: u32,
    pub(super) crc: u32,
}

impl Puntatore {
    /// The pointer as sled keeps it; with `ms`, an exchange's (its time beside it).
    pub(super) fn codifica(&self, ms: Option<i64>) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(&MARCA);
        codec::naturale(&mut v, u64::from(self.seg));
        codec::naturale(&mut v, self.off);
        codec::naturale(&mut v, u64::from(self.len));
        v.extend_from_slice(&self.crc.to_le_bytes());
        if let Some(ms) = ms {
            codec::intero(&mut v, ms);
        }
        v
    }

    /// The pointer a sled value holds, and what follows it; None for a value kept in sled.
    pub(super) fn di(v: &[u8]) -> Option<(Puntatore, &[u8])> {
        let mut l = codec::Lettore(v.strip_prefix(&MARCA)?);
        let seg = u32::try_from(l.naturale()?).ok()?;
        let off = l.naturale()?;
        let len = u32::try_from(l.naturale()?).ok()?;
        let crc = u32::from_le_bytes(l.0.get(..4)?.try_into().ok()?);
        Some((Puntatore { seg, off, len, crc }, &l.0[4..]))
    }

    /// The time an exchange's pointer carries.
    pub(super) fn ms(v: &[u8]) -> Option<i64> {
        let (_, resto) = Puntatore::di(v)?;
        codec::Lettore(resto).intero()
    }

    /// The modulo whose document an exchange's record was written without, if it was.
    pub(super) fn documento(v: &[u8]) -> Option<Puntatore> {
        let (_, resto) = Puntatore::di(v)?;
        let mut l = codec::Lettore(resto);
        l.intero()?;
        Puntatore::di(l.0).map(|(p, _)| p)
    }
}

/// Where an entry's operations begin in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Posizione {
    pub(super) seg: u32,
    pub(super) off: u64,
}

impl Posizione {
    pub(super) fn codifica(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.seg.to_be_bytes());
        b[4..].copy_from_slice(&self.off.to_be_bytes());
        b
    }

    pub(super) fn di(v: &[u8]) -> Option<Posizione> {
        Some(Posizione {
            seg: u32::from_be_bytes(v.get(..4)?.try_into().ok()?),
            off: u64::from_be_bytes(v.get(4..12)?.try_into().ok()?),
        })
    }
}

/// At most this many segment files are kept open for reading (a month of a busy node is a
/// thousand segments or more; each kept open is a file descriptor of the process's).
const APERTI_MAX: usize = 64;

/// The segment files, for reading (any thread) and listing.
pub(super) struct Segmenti {
    dir: PathBuf,
    aperti: RwLock<HashMap<u32, Arc<std::fs::File>>>,
}

/// A segment's file name.
fn nome(seg: u32) -> String {
    format!("{seg:08}.log")
}

impl Segmenti {
    pub(super) fn new(store: &Path) -> Segmenti {
        Segmenti {
            dir: store.join(DIR),
            aperti: RwLock::new(HashMap::new()),
        }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(super) fn path(&self, seg: u32) -> PathBuf {
        self.dir.join(nome(seg))
    }

    fn file(&self, seg: u32) -> Result<Arc<std::fs::File>> {
        if let Some(f) = self
            .aperti
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seg)
        {
            return Ok(f.clone());
        }
        let path = self.path(seg);
        let f = Arc::new(std::fs::File::open(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::corrupt(format!("the log's segment {} is missing", path.display()))
            } else {
                StoreError::io(format!("cannot open {}", path.display()), e)
            }
        })?);
        let mut aperti = self.aperti.write().unwrap_or_else(|e| e.into_inner());
        if aperti.len() >= APERTI_MAX {
            // The newest segments stay open (the recent records are the ones read most), the
            // rest are opened again when read.
            let mut n: Vec<u32> = aperti.keys().copied().collect();
            n.sort_unstable();
            let da = n[n.len() - 8];
            aperti.retain(|k, _| *k >= da);
        }
        aperti.insert(seg, f.clone());
        Ok(f)
    }

    /// The file the log's end writes, read through the same handle (no open per segment).
    fn condividi(&self, seg: u32, file: std::fs::File) -> Arc<std::fs::File> {
        let file = Arc::new(file);
        self.aperti
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seg, file.clone());
        file
    }

    /// The value `p` points to, checked against its CRC.
    pub(super) fn leggi(&self, p: &Puntatore) -> Result<Vec<u8>> {
        let f = self.file(p.seg)?;
        let mut v = vec![0u8; p.len as usize];
        f.read_exact_at(&mut v, p.off).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                StoreError::corrupt(format!(
                    "the log's segment {} ends before {} bytes at {}",
                    p.seg, p.len, p.off
                ))
            } else {
                StoreError::io(format!("reading the log's segment {}", p.seg), e)
            }
        })?;
        if crc32fast::hash(&v) != p.crc {
            return Err(StoreError::corrupt(format!(
                "the log's segment {}: {} bytes at {} do not match their CRC",
                p.seg, p.len, p.off
            )));
        }
        Ok(v)
    }

    /// The segments there are, by number, with their sizes.
    pub(super) fn elenco(&self) -> std::io::Result<Vec<(u32, u64)>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
        };
        for e in rd {
            let e = e?;
            let nome = e.file_name();
            let Some(n) = nome
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .filter(|n| n.len() == 8)
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            out.push((n, e.metadata()?.len()));
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Removes a segment no pointer names any more.
    pub(super) fn togli(&self, seg: u32) -> std::io::Result<()> {
        self.aperti
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seg);
        std::fs::remove_file(self.path(seg))
    }
}

/// Makes a directory's entries durable (a new segment's name).
pub(super) fn sincronizza_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// The log's end, where the commit thread appends.
pub(super) struct Coda {
    seg: u32,
    file: Arc<std::fs::File>,
    len: u64,
    pub(super) segmenti: Arc<Segmenti>,
}

impl Coda {
    /// Begins segment `seg` (empty), durably named.
    pub(super) fn nuova(segmenti: Arc<Segmenti>, seg: u32) -> std::io::Result<Coda> {
        std::fs::create_dir_all(segmenti.dir())?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(segmenti.path(seg))?;
        file.sync_all()?;
        sincronizza_dir(segmenti.dir())?;
        let file = segmenti.condividi(seg, file);
        Ok(Coda {
            seg,
            file,
            len: 0,
            segmenti,
        })
    }

    /// Goes on at the end of segment `seg`, `len` bytes long.
    pub(super) fn riprendi(segmenti: Arc<Segmenti>, seg: u32, len: u64) -> std::io::Result<Coda> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(segmenti.path(seg))?;
        let file = segmenti.condividi(seg, file);
        Ok(Coda {
            seg,
            file,
            len,
            segmenti,
        })
    }

    /// Where the next entry goes.
    pub(super) fn posizione(&self) -> Posizione {
        Posizione {
            seg: self.seg,
            off: self.len,
        }
    }

    /// Appends `buf` durably; returns where it begins. On failure nothing of it stays (the
    /// segment is cut back, as far as the disk lets it).
    pub(super) fn aggiungi(&mut self, buf: &[u8]) -> std::io::Result<Posizione> {
        let at = self.posizione();
        match self
            .file
            .write_all_at(buf, self.len)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(at)
            }
            Err(e) => {
                if let Err(e2) = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data())
                {
                    tracing::error!(error = %e2, "store: the log cannot be cut back after a failed write");
                }
                Err(e)
            }
        }
    }

    /// Begins the next segment once this one is full.
    pub(super) fn ruota_se_piena(&mut self) -> std::io::Result<()> {
        if self.len < SEGMENTO {
            return Ok(());
        }
        *self = Coda::nuova(self.segmenti.clone(), self.seg + 1)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_read_back_and_a_changed_byte_is_refused() {
        let p = Puntatore {
            seg: 7,
            off: 1 << 33,
            len: 1000,
            crc: 0xdead_beef,
        };
        let v = p.codifica(Some(-5));
        assert_eq!(v.len(), 4 + 1 + 5 + 2 + 4 + 1);
        assert_eq!(Puntatore::di(&v).map(|(p, _)| p), Some(p));
        assert_eq!(Puntatore::ms(&v), Some(-5));
        assert_eq!(
            Puntatore::di(&p.codifica(None)).map(|(q, r)| (q, r.len())),
            Some((p, 0))
        );
        assert!(Puntatore::di(b"{\"json\":1}").is_none());
        assert!(Puntatore::di(&v[..10]).is_none());

        let dir = super::super::tests::tmp("registro");
        let segmenti = Arc::new(Segmenti::new(&dir));
        let mut coda = Coda::nuova(segmenti.clone(), 1).unwrap();
        coda.aggiungi(b"xxxx").unwrap();
        let at = coda.aggiungi(b"hello").unwrap();
        assert_eq!(at, Posizione { seg: 1, off: 4 });
        let p = Puntatore {
            seg: 1,
            off: 4,
            len: 5,
            crc: crc32fast::hash(b"hello"),
        };
        assert_eq!(segmenti.leggi(&p).unwrap(), b"hello");
        let storto = Puntatore { off: 3, ..p };
        assert!(matches!(
            segmenti.leggi(&storto),
            Err(StoreError::Corrupt(_))
        ));
        let oltre = Puntatore { off: 6, ..p };
        assert!(matches!(
            segmenti.leggi(&oltre),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(segmenti.elenco().unwrap(), vec![(1, 9)]);
        segmenti.togli(1).unwrap();
        assert!(matches!(segmenti.leggi(&p), Err(StoreError::Corrupt(_))));
        // Reading many segments keeps a bounded number of them open.
        for seg in 2..=(APERTI_MAX as u32 + 20) {
            std::fs::write(segmenti.path(seg), b"hello").unwrap();
        }
        for seg in 2..=(APERTI_MAX as u32 + 20) {
            let q = Puntatore { seg, off: 0, ..p };
            assert_eq!(segmenti.leggi(&q).unwrap(), b"hello");
            assert!(segmenti.aperti.read().unwrap().len() <= APERTI_MAX);
        }
        let q = Puntatore {
            seg: 2,
            off: 0,
            ..p
        };
        assert_eq!(segmenti.leggi(&q).unwrap(), b"hello", "opened again");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
