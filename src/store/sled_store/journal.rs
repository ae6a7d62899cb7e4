//! The store's write-ahead journal. Every write (an exchange with what it changed, or a batch
//! by itself) becomes one entry, appended to the log's segment files ([`super::registro`]) and
//! made durable by one `fdatasync` shared by every writer waiting ([`super::commit`]); only then
//! is it applied to sled's trees, with plain inserts, in the journal's order. sled's own
//! transactions cost a roll of its log buffer, a write and thread hand-offs each: about 230 µs
//! of CPU per 1 KB exchange, half of all the gateway spent (docs/performance.md). sled's trees
//! are made durable only at a checkpoint (a flush of sled), which records where the log stood.
//! The exchanges' records and the moduli stay in the log: sled gets where they lie.
//!
//! At open, what the log holds after the checkpoint is applied again, whole entries in order,
//! up to the first that is torn (a crash in the middle of its write: that writer was never
//! answered). Each operation ends the same applied once or twice, so an entry that was applied,
//! in part or in whole, before the crash ends as if applied once. (Stores of earlier versions
//! kept the journal in one file, `journal`, emptied at each checkpoint: what it holds is applied
//! once at open, and the file removed.)

use std::path::Path;

use super::codec::{self, albero, be};
use super::registro::{self, Coda, Posizione, Puntatore, Segmenti};
use crate::store::{DupEntry, Result, StoreError};

/// The journal's file in stores of earlier versions, in the store's directory.
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
/// As [`PUT`], the value left in the log and sled given where it lies, followed by a few
/// bytes kept in sled beside it (a modulo's summary).
const PUT_REG: u8 = 6;
/// As [`SCAMBIO`], the record left in the log.
const SCAMBIO_REG: u8 = 7;
/// As [`SCAMBIO_REG`], the record without the modulo's document its request carries: sled gets,
/// beside the record's pointer, that of the value the entry's last [`PUT_REG`] wrote (the
/// modulo).
const SCAMBIO_REG_DOC: u8 = 9;
/// A value moved to the log's end, out of a segment mostly dead: as [`PUT_REG`], only if the
/// key still holds the value it had (else a newer write has taken its place).
const SPOSTA_REG: u8 = 10;
/// As [`SALDA`], with the whole entry for an id not in the filter yet (claims are kept in
/// memory while in flight).
const SALDA_CON: u8 = 8;

/// The head of an entry: the length of its operations and their CRC-32, both little-endian.
pub(super) const TESTA: usize = 8;

/// The trees the journal writes, opened once.
pub(super) struct Alberi {
    pub(super) db: sled::Db,
    t: Vec<sled::Tree>,
    /// Where the checkpoint left the log ([`registro::DA`]).
    pub(super) meta: sled::Tree,
}

impl Alberi {
    pub(super) fn apri(db: &sled::Db) -> Result<Alberi> {
        Ok(Alberi {
            db: db.clone(),
            t: ALBERI
                .iter()
                .map(|n| db.open_tree(n).map_err(be))
                .collect::<Result<_>>()?,
            meta: db.open_tree(albero::META).map_err(be)?,
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

    /// As [`Voce::put`], the value kept in the log: sled gets its [`Puntatore`], then `accanto`.
    pub(super) fn put_registro(&mut self, albero: &str, k: &[u8], v: &[u8], accanto: &[u8]) {
        self.0.push(PUT_REG);
        self.0.push(numero(albero));
        self.byte(k);
        self.0.extend_from_slice(&crc32fast::hash(v).to_le_bytes());
        self.byte(v);
        self.byte(accanto);
    }

    /// `k` in `albero`, if it still holds `prima` (a pointer with what is beside it), takes the
    /// same value `v` written again, with the same bytes beside its new pointer.
    pub(super) fn sposta_registro(&mut self, albero: &str, k: &[u8], prima: &[u8], v: &[u8]) {
        self.0.push(SPOSTA_REG);
        self.0.push(numero(albero));
        self.byte(k);
        self.byte(prima);
        self.0.extend_from_slice(&crc32fast::hash(v).to_le_bytes());
        self.byte(v);
    }

    /// As [`Voce::scambio`], the record kept in the log; `senza_documento`: a record written
    /// without the document of the modulo this entry put last ([`SCAMBIO_REG_DOC`]).
    pub(super) fn scambio_registro(
        &mut self,
        seq: u64,
        ricevuto_ms: i64,
        record: &[u8],
        senza_documento: bool,
    ) {
        self.0.push(if senza_documento {
            SCAMBIO_REG_DOC
        } else {
            SCAMBIO_REG
        });
        self.0.extend_from_slice(&seq.to_be_bytes());
        self.0.extend_from_slice(&ricevuto_ms.to_be_bytes());
        self.0
            .extend_from_slice(&crc32fast::hash(record).to_le_bytes());
        self.byte(record);
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

    /// The duplicate-filter entry under `k` is settled as `d` says (its seq set): written whole
    /// when the filter has none, else only its seq changed.
    pub(super) fn salda_con(&mut self, k: &[u8], d: &DupEntry) {
        self.0.push(SALDA_CON);
        self.byte(k);
        self.byte(&codec::encode_dup(d));
    }

    /// The record of exchange `seq`, received at `ricevuto_ms`, with its time-index entry
    /// (moved when the record was written before at another time).
    #[cfg(test)]
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

/// The operations of each whole entry in `file`, each with where it begins there, and how many
/// bytes they take: reading stops at the first entry that is torn (short, or its CRC does not
/// match).
pub(super) fn voci(file: &[u8]) -> (Vec<(usize, &[u8])>, usize) {
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
        out.push((at + TESTA, corpo));
        at += TESTA + len;
    }
    (out, at)
}

/// Reads an entry's operations.
struct Lettore<'a>(&'a [u8]);

impl<'a> Lettore<'a> {
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(
            self.prendi(4)?.try_into().unwrap_or_default(),
        ))
    }
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

/// Applies an entry's operations to the trees; `pos`: where they lie in the log (None for an
/// entry of an earlier version's journal file, which has no values kept in the log).
pub(super) fn applica(a: &Alberi, corpo: &[u8], pos: Option<Posizione>) -> Result<()> {
    let mut r = Lettore(corpo);
    // Where the value just read lies in the log.
    let dove = |r: &Lettore<'_>, v: &[u8], crc: u32| -> Result<Puntatore> {
        let pos = pos.ok_or_else(|| {
            StoreError::corrupt("journal: a value kept in the log, outside the log")
        })?;
        Ok(Puntatore {
            seg: pos.seg,
            off: pos.off + (corpo.len() - r.0.len() - v.len()) as u64,
            len: v.len() as u32,
            crc,
        })
    };
    // The value the last PUT_REG of the entry wrote.
    let mut ultimo: Option<Puntatore> = None;
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
            PUT_REG => {
                let t = r.albero(a)?;
                let k = r.byte()?;
                let crc = r.u32()?;
                let v = r.byte()?;
                let p = dove(&r, v, crc)?;
                ultimo = Some(p);
                let mut valore = p.codifica(None);
                valore.extend_from_slice(r.byte()?);
                t.insert(k, valore).map_err(be)?;
            }
            ID_SE_MANCA => {
                let k = r.byte()?;
                let seq = r.u64()?.to_be_bytes();
                let _ = a
                    .per_nome(albero::IDS)
                    .compare_and_swap(k, None as Option<&[u8]>, Some(&seq[..]))
                    .map_err(be)?;
            }
            op @ (SALDA | SALDA_CON) => {
                let k = r.byte()?;
                let (seq, nuova) = if op == SALDA {
                    let seq = r.u64()?;
                    let d = DupEntry {
                        seq,
                        first_ms: 0,
                        repeats: 0,
                        scade_ms: None,
                    };
                    (seq, d)
                } else {
                    let d = codec::decode_dup(r.byte()?)?;
                    (d.seq, d)
                };
                a.per_nome(albero::DUP)
                    .fetch_and_update(k, |old| {
                        let mut d = old
                            .and_then(|o| codec::decode_dup(o).ok())
                            .unwrap_or_else(|| nuova.clone());
                        d.seq = seq;
                        Some(codec::encode_dup(&d))
                    })
                    .map_err(be)?;
            }
            SPOSTA_REG => {
                let t = r.albero(a)?;
                let k = r.byte()?;
                let prima = r.byte()?;
                let crc = r.u32()?;
                let v = r.byte()?;
                let accanto = Puntatore::di(prima)
                    .map(|(_, resto)| resto)
                    .ok_or_else(|| {
                        StoreError::corrupt("journal: a move of a value not in the log")
                    })?;
                let mut valore = dove(&r, v, crc)?.codifica(None);
                valore.extend_from_slice(accanto);
                // A newer write took the key's place meanwhile: nothing to move.
                let _ = t
                    .compare_and_swap(k, Some(prima), Some(valore))
                    .map_err(be)?;
            }
            op @ (SCAMBIO | SCAMBIO_REG | SCAMBIO_REG_DOC) => {
                let seq = r.u64()?;
                let ms = r.u64()? as i64;
                let crc = if op == SCAMBIO { None } else { Some(r.u32()?) };
                let record = r.byte()?;
                let valore = match crc {
                    Some(crc) => {
                        let mut v = dove(&r, record, crc)?.codifica(Some(ms));
                        if op == SCAMBIO_REG_DOC {
                            let m = ultimo.ok_or_else(|| {
                                StoreError::corrupt("journal: a record without its modulo")
                            })?;
                            v.extend_from_slice(&m.codifica(None));
                        }
                        v
                    }
                    None => record.to_vec(),
                };
                let prima = a
                    .per_nome(albero::EXCHANGES)
                    .insert(seq.to_be_bytes(), valore)
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

/// Applies again what an earlier version's journal file holds, makes it durable in sled and
/// removes the file.
fn vecchio_giornale(a: &Alberi, dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    let io = |what: &str| {
        let what = format!("journal {}: {what}", path.display());
        move |e| StoreError::io(what, e)
    };
    let tutto = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("cannot read")(e)),
    };
    let (voci, letti) = voci(&tutto);
    for (_, v) in &voci {
        applica(a, v, None)?;
    }
    a.db.flush().map_err(be)?;
    if !voci.is_empty() {
        tracing::info!(
            entries = voci.len(),
            bytes = letti,
            "store: the journal of an earlier version applied again at open"
        );
    }
    std::fs::remove_file(&path).map_err(io("cannot remove"))?;
    registro::sincronizza_dir(dir).map_err(io("cannot sync its directory"))
}

/// Opens the log of the store in `dir` for appending, after applying again what it holds past
/// the last checkpoint (a crash or a failure left it there) and making that durable in sled.
/// After a clean close the log goes on at its end; otherwise in a new segment, so that what a
/// crash tore is never read again.
pub(super) fn apri(a: &Alberi, dir: &Path) -> Result<Coda> {
    vecchio_giornale(a, dir)?;
    let segmenti = std::sync::Arc::new(Segmenti::new(dir));
    let io = |what: String| move |e| StoreError::io(what, e);
    let elenco = segmenti
        .elenco()
        .map_err(io(format!("cannot list {}", segmenti.dir().display())))?;
    let da = match a.meta.get(registro::DA).map_err(be)? {
        Some(v) => Some(
            Posizione::di(&v).ok_or_else(|| StoreError::corrupt("meta: the log's checkpoint"))?,
        ),
        None => None,
    };
    let t0 = std::time::Instant::now();
    let (mut applicate, mut byte, mut strappi) = (0usize, 0u64, 0u64);
    if let Some(da) = da {
        for &(seg, len) in elenco.iter().filter(|(s, _)| *s >= da.seg) {
            let inizio = if seg == da.seg { da.off } else { 0 };
            if len <= inizio {
                continue;
            }
            let path = segmenti.path(seg);
            let tutto =
                std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
            let resto = tutto.get(inizio as usize..).unwrap_or_default();
            let (voci, letti) = voci(resto);
            for (at, v) in &voci {
                let pos = Posizione {
                    seg,
                    off: inizio + *at as u64,
                };
                applica(a, v, Some(pos))?;
            }
            applicate += voci.len();
            byte += letti as u64;
            strappi += (resto.len() - letti) as u64;
        }
    }
    if strappi > 0 {
        tracing::warn!(
            bytes = strappi,
            "store: the log's last entry was torn (a write cut short, never acknowledged): left out"
        );
    }
    if applicate > 0 {
        tracing::info!(
            entries = applicate,
            bytes = byte,
            millis = t0.elapsed().as_millis() as u64,
            "store: the log applied again at open"
        );
    }
    // A clean close left the checkpoint at the end of the last segment: go on there.
    let ultimo = elenco.last().copied();
    if let (Some(da), Some((seg, len))) = (da, ultimo) {
        if da.seg == seg && da.off == len {
            return Coda::riprendi(segmenti, seg, len)
                .map_err(io(format!("cannot open the log in {}", dir.display())));
        }
    }
    a.db.flush().map_err(be)?;
    let nuovo = ultimo.map_or(0, |(s, _)| s).max(da.map_or(0, |d| d.seg)) + 1;
    let coda = Coda::nuova(segmenti, nuovo)
        .map_err(io(format!("cannot begin the log in {}", dir.display())))?;
    a.meta
        .insert(registro::DA, &coda.posizione().codifica()[..])
        .map_err(be)?;
    a.db.flush().map_err(be)?;
    Ok(coda)
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
        v.put_registro(
            albero::MODULI,
            b"candidatura/2",
            b"nel registro",
            b"accanto",
        );
        v.scambio_registro(10, 1_765_000_000_001, b"record nel registro", false);
        v.scambio_registro(11, 1_765_000_000_002, b"record senza documento", true);
        v.salda_con(
            b"2026-12-07_10:00EMILIA_3",
            &DupEntry {
                seq: 10,
                first_ms: 5,
                repeats: 2,
                scade_ms: Some(7),
            },
        );
        v.chiudi()
    }

    #[test]
    fn entries_read_back_up_to_the_first_torn_one_at_every_cut() {
        let uno = voce_di_prova();
        let mut file = uno.clone();
        file.extend_from_slice(&uno);
        let (v, n) = voci(&file);
        assert_eq!((v.len(), n), (2, file.len()));
        assert_eq!(v[0], (TESTA, &uno[TESTA..]));
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
        // The entry as the log holds it: its operations at offset 100 of segment 3.
        let pos = Posizione { seg: 3, off: 100 };
        let nel_file = |p: &Puntatore| {
            assert_eq!(p.seg, 3);
            let at = (p.off - 100) as usize;
            let b = &v[0].1[at..at + p.len as usize];
            assert_eq!(crc32fast::hash(b), p.crc);
            b.to_vec()
        };
        // Values kept in the log need to know where the entry lies.
        assert!(applica(&a, v[0].1, None).is_err());
        applica(&a, v[0].1, Some(pos)).unwrap();
        let dopo = stato(&a);
        let m2 = a
            .per_nome(albero::MODULI)
            .get(b"candidatura/2")
            .unwrap()
            .unwrap();
        let (p2, accanto) = Puntatore::di(&m2).unwrap();
        assert_eq!(nel_file(&p2), b"nel registro");
        assert_eq!(accanto, b"accanto");
        let scambio = |seq: u64| {
            a.per_nome(albero::EXCHANGES)
                .get(seq.to_be_bytes())
                .unwrap()
                .expect("the exchange is applied")
        };
        let e10 = scambio(10);
        assert_eq!(
            nel_file(&Puntatore::di(&e10).unwrap().0),
            b"record nel registro"
        );
        assert_eq!(codec::ricevuto_di(&e10).unwrap(), 1_765_000_000_001);
        assert_eq!(Puntatore::documento(&e10), None);
        // A record without its modulo's document points to that modulo's value too.
        let e11 = scambio(11);
        assert_eq!(
            nel_file(&Puntatore::di(&e11).unwrap().0),
            b"record senza documento"
        );
        assert_eq!(Puntatore::documento(&e11), Some(p2));
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
        let d = a
            .per_nome(albero::DUP)
            .get(b"2026-12-07_10:00EMILIA_3")
            .unwrap()
            .unwrap();
        assert_eq!(
            codec::decode_dup(&d).unwrap(),
            DupEntry {
                seq: 10,
                first_ms: 5,
                repeats: 2,
                scade_ms: Some(7),
            }
        );
        assert_eq!(a.per_nome(albero::RECEIVED).len(), 3);
        applica(&a, v[0].1, Some(pos)).unwrap();
        assert_eq!(stato(&a), dopo);
        // An id another exchange holds stays with it.
        let mut altra = Voce::default();
        altra.id_se_manca(b"2026-12-07_10:00EMILIA_1", 10);
        let altra = altra.chiudi();
        applica(&a, voci(&altra).0[0].1, None).unwrap();
        assert_eq!(stato(&a), dopo);
        // What does not read is refused, not applied in part silently.
        assert!(applica(&a, &[PUT, 99, 0, 0, 0, 0, 0, 0, 0, 0], None).is_err());
        assert!(applica(&a, &[42], None).is_err());
        assert!(applica(&a, &v[0].1[..v[0].1.len() - 1], Some(pos)).is_err());
        drop((a, db));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_move_applies_only_over_the_value_it_moves() {
        let dir = super::super::tests::tmp("journal-sposta");
        let db = sled::Config::new().path(&dir).open().unwrap();
        let a = Alberi::apri(&db).unwrap();
        let moduli = a.per_nome(albero::MODULI).clone();
        let vecchio = Puntatore {
            seg: 1,
            off: 10,
            len: 3,
            crc: crc32fast::hash(b"abc"),
        };
        let mut prima = vecchio.codifica(None);
        prima.extend_from_slice(b"sommario");
        moduli.insert(b"k", prima.clone()).unwrap();
        let mut v = Voce::default();
        v.sposta_registro(albero::MODULI, b"k", &prima, b"abc");
        let v = v.chiudi();
        let pos = Posizione { seg: 5, off: 0 };
        applica(&a, voci(&v).0[0].1, Some(pos)).unwrap();
        let ora = moduli.get(b"k").unwrap().unwrap();
        let (p, accanto) = Puntatore::di(&ora).unwrap();
        assert_eq!((p.seg, p.len, p.crc), (5, 3, vecchio.crc));
        assert_eq!(accanto, b"sommario");
        // Applied again (a replay), or over a newer value: nothing changes.
        applica(&a, voci(&v).0[0].1, Some(pos)).unwrap();
        assert_eq!(moduli.get(b"k").unwrap().unwrap(), ora);
        moduli.insert(b"k", &b"nuovo"[..]).unwrap();
        applica(&a, voci(&v).0[0].1, Some(pos)).unwrap();
        assert_eq!(
            moduli.get(b"k").unwrap().unwrap(),
            sled::IVec::from(&b"nuovo"[..])
        );
        drop((a, moduli, db));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
