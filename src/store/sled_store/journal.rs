//! The store's write-ahead journal. Every write (an exchange with what it changed, or a batch
//! by itself) becomes one entry, appended to the file `journal` beside sled's and made durable
//! by one `fdatasync` shared by every writer waiting ([`super::commit`]); only then is it applied
//! to sled's trees, with plain inserts, in the journal's order. sled's own transactions cost a
//! roll of its log buffer, a write and thread hand-offs each: about 230 µs of CPU per 1 KB
//! exchange, half of all the gateway spent (docs/performance.md). sled's trees are made durable
//! only at a checkpoint (a flush of sled), after which the journal starts again empty.
//!
//! At open, what the journal holds is applied again, whole entries in order, up to the first
//! that is torn (a crash in the middle of its write: that writer was never answered). Each
//! operation ends the same applied once or twice, so an entry that was applied, in part or in
//! whole, before the crash ends as if applied once.

use std::io::Read;
use std::path::Path;

use super::codec::{self, albero, be};
use crate::store::{DupEntry, Result, StoreError};

/// The journal's file, in the store's directory.
pub(super) const FILE: &str = "journal";

/// The trees an entry names, by their place in this list: the list is the format, so a new
/// tree goes at its end.
const ALBERI: [&str; 16] = [
    albero::EXCHANGES,
    albero::IDS,
    albero::RECEIVED,
    albero::DUP,
    albero::MODULI,
    albero::MODULI_PEZZI,
    albero::SOMMARI,
    albero::RAW,
    albero::OUTBOX,
    albero::EURES,
    albero::USERS,
    albero::RAPPORTI,
    albero::INTERMEDIARI,
    albero::CONTATTI,
    albero::DIAGNOSTICI,
    albero::PARTNERS,
];

const PUT: u8 = 1;
const DEL: u8 = 2;
const ID_SE_MANCA: u8 = 3;
const SALDA: u8 = 4;
const SCAMBIO: u8 = 5;

/// The head of an entry: the length of its operations and their CRC-32, both little-endian.
const TESTA: usize = 8;

/// The trees the journal writes, opened once.
pub(super) struct Alberi {
    pub(super) db: sled::Db,
    t: Vec<sled::Tree>,
}

impl Alberi {
    pub(super) fn apri(db: &sled::Db) -> Result<Alberi> {
        Ok(Alberi {
            db: db.clone(),
            t: ALBERI
                .iter()
                .map(|n| db.open_tree(n).map_err(be))
                .collect::<Result<_>>()?,
        })
    }

    fn per_nome(&self, nome: &str) -> &sled::Tree {
        let i = numero(nome);
        &self.t[i as usize]
    }
}

/// A tree's number in an entry. Only the trees of [`ALBERI`] are written through the journal.
pub(super) fn numero(nome: &str) -> u8 {
    match ALBERI.iter().position(|n| *n == nome) {
        Some(i) => i as u8,
        None => unreachable!("{nome} is not a tree of the journal"),
    }
}

/// One entry being written: its operations after room for its head.
pub(super) struct Voce(Vec<u8>);

impl Default for Voce {
    fn default() -> Self {
        Voce(vec![0; TESTA])
    }
}

impl Voce {
    fn byte(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u32).to_le_bytes());
        self.0.extend_from_slice(b);
    }

    /// `k` in `albero` takes the value `v`.
    pub(super) fn put(&mut self, albero: &str, k: &[u8], v: &[u8]) {
        self.0.push(PUT);
        self.0.push(numero(albero));
        self.byte(k);
        self.byte(v);
    }

    /// `k` leaves `albero`.
    pub(super) fn del(&mut self, albero: &str, k: &[u8]) {
        self.0.push(DEL);
        self.0.push(numero(albero));
        self.byte(k);
    }

    /// The exchange `seq` takes the Identificatore whose `ids` key is `k`, unless another
    /// exchange has it (the first exchange carrying an id keeps it).
    pub(super) fn id_se_manca(&mut self, k: &[u8], seq: u64) {
        self.0.push(ID_SE_MANCA);
        self.byte(k);
        self.0.extend_from_slice(&seq.to_be_bytes());
    }

    /// The duplicate-filter entry under `k` is settled by the exchange `seq`.
    pub(super) fn salda(&mut self, k: &[u8], seq: u64) {
        self.0.push(SALDA);
        self.byte(k);
        self.0.extend_from_slice(&seq.to_be_bytes());
    }

    /// The record of exchange `seq`, received at `ricevuto_ms`, with its time-index entry
    /// (moved when the record was written before at another time).
    pub(super) fn scambio(&mut self, seq: u64, ricevuto_ms: i64, record: &[u8]) {
        self.0.push(SCAMBIO);
        self.0.extend_from_slice(&seq.to_be_bytes());
        self.0.extend_from_slice(&ricevuto_ms.to_be_bytes());
        self.byte(record);
    }

    /// The operations of an entry made by [`Voce::chiudi`] (the live path: no CRC to check).
    pub(super) fn operazioni(voce: &[u8]) -> &[u8] {
        &voce[TESTA.min(voce.len())..]
    }

    /// The entry as it is appended: head, then operations.
    pub(super) fn chiudi(mut self) -> Vec<u8> {
        let corpo = &self.0[TESTA..];
        let len = (corpo.len() as u32).to_le_bytes();
        let crc = crc32fast::hash(corpo).to_le_bytes();
        self.0[..4].copy_from_slice(&len);
        self.0[4..TESTA].copy_from_slice(&crc);
        self.0
    }
}

/// The operations of each whole entry in `file`, and how many bytes they take: reading stops
/// at the first entry that is torn (short, or its CRC does not match).
pub(super) fn voci(file: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut at = 0;
    while file.len() - at >= TESTA {
        let len = u32::from_le_bytes(file[at..at + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(file[at + 4..at + TESTA].try_into().unwrap_or_default());
        let Some(corpo) = file.get(at + TESTA..).and_then(|r| r.get(..len)) else {
            break;
        };
        if crc32fast::hash(corpo) != crc {
            break;
        }
        out.push(corpo);
        at += TESTA + len;
    }
    (out, at)
}

/// Reads an entry's operations.
struct Lettore<'a>(&'a [u8]);

impl<'a> Lettore<'a> {
    fn prendi(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(StoreError::corrupt("journal: an operation ends early"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.prendi(1)?[0])
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.prendi(8)?.try_into().unwrap_or_default(),
        ))
    }
    fn byte(&mut self) -> Result<&'a [u8]> {
        let n = u32::from_le_bytes(self.prendi(4)?.try_into().unwrap_or_default());
        self.prendi(n as usize)
    }
    fn albero(&mut self, a: &'a Alberi) -> Result<&'a sled::Tree> {
        let n = self.u8()?;
        a.t.get(n as usize)
            .ok_or_else(|| StoreError::corrupt(format!("journal: no tree numbered {n}")))
    }
}

/// Applies an entry's operations to the trees.
pub(super) fn applica(a: &Alberi, corpo: &[u8]) -> Result<()> {
    let mut r = Lettore(corpo);
    while !r.0.is_empty() {
        match r.u8()? {
            PUT => {
                let t = r.albero(a)?;
                let (k, v) = (r.byte()?, r.byte()?);
                t.insert(k, v).map_err(be)?;
            }
            DEL => {
                let t = r.albero(a)?;
                t.remove(r.byte()?).map_err(be)?;
            }
            ID_SE_MANCA => {
                let k = r.byte()?;
                let seq = r.u64()?.to_be_bytes();
                let _ = a
                    .per_nome(albero::IDS)
                    .compare_and_swap(k, None as Option<&[u8]>, Some(&seq[..]))
                    .map_err(be)?;
            }
            SALDA => {
                let k = r.byte()?;
                let seq = r.u64()?;
                a.per_nome(albero::DUP)
                    .fetch_and_update(k, |old| {
                        let mut d =
                            old.and_then(|o| codec::decode_dup(o).ok())
                                .unwrap_or(DupEntry {
                                    seq: 0,
                                    first_ms: 0,
                                    repeats: 0,
                                    scade_ms: None,
                                });
                        d.seq = seq;
                        Some(codec::encode_dup(&d))
                    })
                    .map_err(be)?;
            }
            SCAMBIO => {
                let seq = r.u64()?;
                let ms = r.u64()? as i64;
                let record = r.byte()?;
                let prima = a
                    .per_nome(albero::EXCHANGES)
                    .insert(seq.to_be_bytes(), record)
                    .map_err(be)?;
                let received = a.per_nome(albero::RECEIVED);
                received
                    .insert(codec::chiave_ricevuto(ms, seq), &[][..])
                    .map_err(be)?;
                // A record written again at another time leaves no entry at its old one.
                if let Some(Ok(vecchio)) = prima.as_deref().map(codec::ricevuto_di) {
                    if vecchio != ms {
                        received
                            .remove(codec::chiave_ricevuto(vecchio, seq))
                            .map_err(be)?;
                    }
                }
            }
            altro => {
                return Err(StoreError::corrupt(format!(
                    "journal: unknown operation {altro}"
                )))
            }
        }
    }
    Ok(())
}

/// Opens the journal of the store in `dir` for appending, after applying again what it holds
/// (a crash or a failure left it there) and making that durable in sled: the file returned is
/// empty.
pub(super) fn riapri(a: &Alberi, dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(FILE);
    let io = |what: &str| {
        let what = format!("journal {}: {what}", path.display());
        move |e| StoreError::io(what, e)
    };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("cannot open"))?;
    let mut tutto = Vec::new();
    file.read_to_end(&mut tutto).map_err(io("cannot read"))?;
    if tutto.is_empty() {
        return Ok(file);
    }
    let t0 = std::time::Instant::now();
    let (voci, letti) = voci(&tutto);
    for v in &voci {
        applica(a, v)?;
    }
    a.db.flush().map_err(be)?;
    if letti < tutto.len() {
        tracing::warn!(
            bytes = tutto.len() - letti,
            "store: the journal's last entry was torn (a write cut short, never acknowledged): left out"
        );
    }
    tracing::info!(
        entries = voci.len(),
        bytes = letti,
        millis = t0.elapsed().as_millis() as u64,
        "store: the journal applied again at open"
    );
    svuota(&file).map_err(io("cannot empty"))?;
    Ok(file)
}

/// Empties the journal, durably: its entries are all in sled's files by now.
pub(super) fn svuota(file: &std::fs::File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn voce_di_prova() -> Vec<u8> {
        let mut v = Voce::default();
        v.put(albero::MODULI, b"candidatura/1", b"valore");
        v.del(albero::OUTBOX, &7u64.to_be_bytes());
        v.id_se_manca(b"2026-12-07_10:00EMILIA_1", 9);
        v.salda(b"2026-12-07_10:00EMILIA_1", 9);
        v.scambio(9, 1_765_000_000_000, b"record");
        v.chiudi()
    }

    #[test]
    fn entries_read_back_up_to_the_first_torn_one_at_every_cut() {
        let uno = voce_di_prova();
        let mut file = uno.clone();
        file.extend_from_slice(&uno);
        let (v, n) = voci(&file);
        assert_eq!((v.len(), n), (2, file.len()));
        assert_eq!(v[0], &uno[TESTA..]);
        // Cut anywhere in the second entry: the first is read, the rest left out.
        for cut in uno.len()..file.len() {
            let (v, n) = voci(&file[..cut]);
            assert_eq!((v.len(), n), (1, uno.len()), "cut at {cut}");
        }
        // A byte changed in the second entry: the same.
        for i in uno.len()..file.len() {
            let mut f = file.clone();
            f[i] ^= 0x40;
            let (v, _) = voci(&f);
            assert_eq!(v.len(), 1, "byte {i} changed");
        }
    }

    #[test]
    fn operations_apply_and_applying_them_twice_ends_the_same() {
        let dir = super::super::tests::tmp("journal-ops");
        let db = sled::Config::new().path(&dir).open().unwrap();
        let a = Alberi::apri(&db).unwrap();
        a.per_nome(albero::OUTBOX)
            .insert(7u64.to_be_bytes(), &b"forward"[..])
            .unwrap();
        let uno = voce_di_prova();
        let (v, _) = voci(&uno);
        let stato = |a: &Alberi| -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
            a.t.iter()
                .map(|t| {
                    t.iter()
                        .map(|kv| {
                            let (k, v) = kv.unwrap();
                            (k.to_vec(), v.to_vec())
                        })
                        .collect()
                })
                .collect()
        };
        applica(&a, v[0]).unwrap();
        let dopo = stato(&a);
        assert_eq!(
            a.per_nome(albero::MODULI).get(b"candidatura/1").unwrap(),
            Some(sled::IVec::from(&b"valore"[..]))
        );
        assert!(a.per_nome(albero::OUTBOX).is_empty());
        assert_eq!(
            a.per_nome(albero::IDS)
                .get(b"2026-12-07_10:00EMILIA_1")
                .unwrap()
                .as_deref(),
            Some(&9u64.to_be_bytes()[..])
        );
        let d = a
            .per_nome(albero::DUP)
            .get(b"2026-12-07_10:00EMILIA_1")
            .unwrap()
            .unwrap();
        assert_eq!(codec::decode_dup(&d).unwrap().seq, 9);
        assert_eq!(a.per_nome(albero::RECEIVED).len(), 1);
        applica(&a, v[0]).unwrap();
        assert_eq!(stato(&a), dopo);
        // An id another exchange holds stays with it.
        let mut altra = Voce::default();
        altra.id_se_manca(b"2026-12-07_10:00EMILIA_1", 10);
        let altra = altra.chiudi();
        applica(&a, voci(&altra).0[0]).unwrap();
        assert_eq!(stato(&a), dopo);
        // What does not read is refused, not applied in part silently.
        assert!(applica(&a, &[PUT, 99, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(applica(&a, &[42]).is_err());
        assert!(applica(&a, &v[0][..v[0].len() - 1]).is_err());
        drop((a, db));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
