//! The sled engine's trees, keys and record layouts. Nothing outside the engine sees them.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::store::{DupEntry, Exchange, Result, StoreError};
use crate::xml::swar;

/// The trees, by name (the names of every store written so far: they are the on-disk format).
pub(super) mod albero {
    pub const EXCHANGES: &str = "exchanges";
    /// Identificatore → exchange seq.
    pub const IDS: &str = "ids";
    /// Time received → exchange seq (for time ranges).
    pub const RECEIVED: &str = "received";
    pub const DUP: &str = "dup";
    pub const COUNTERS: &str = "id_counters";
    pub const MODULI: &str = "moduli";
    pub const MODULI_PEZZI: &str = "moduli_pezzi";
    /// The summary of each candidatura and vacancy, under its `moduli` key, written with it:
    /// the index of moduli is read from here at open (about 90 bytes each) rather than
    /// from the moduli whole, which would fill sled's cache with documents.
    pub const SOMMARI: &str = "sommari";
    pub const PARTNERS: &str = "partners";
    /// Raw messages of exchanges, in pieces (see [`super::PEZZO`]).
    pub const RAW: &str = "raw";
    pub const OUTBOX: &str = "outbox";
    pub const EURES: &str = "eures";
    pub const USERS: &str = "utenti";
    pub const RAPPORTI: &str = "rapporti";
    pub const INTERMEDIARI: &str = "intermediari";
    pub const CONTATTI: &str = "contatti";
    pub const DIAGNOSTICI: &str = "diagnostici";
    /// The store's own settings (`seq_base`, index versions).
    pub const META: &str = "meta";
}

/// Maps a sled error to the store's: I/O (a full disk named as such), corruption, the rest.
pub(super) fn be(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) => StoreError::io("sled", io),
        sled::Error::Corruption { at, .. } => {
            StoreError::Corrupt(format!("sled reports corruption at {at:?}"))
        }
        other => StoreError::Engine(format!("sled: {other}")),
    }
}

/// Raw messages are kept in pieces of this size in their own tree: sled holds large values
/// in memory for good (measured: a 9 MiB message each time grew the process by about as much,
/// without end), small ones it pages like everything else.
pub(super) const PEZZO: usize = 8 * 1024;

/// The key of a stored modulo.
pub(super) fn chiave_modulo(kind: &str, code: &str) -> Vec<u8> {
    format!("{kind}/{code}").into_bytes()
}

/// The key of a partner.
pub(super) fn chiave_partner(tipo: &str, nome: &str) -> Vec<u8> {
    format!("{tipo}/{nome}").into_bytes()
}

/// The key of an Identificatore counter.
pub(super) fn chiave_contatore(c: &crate::store::Contatore<'_>) -> Vec<u8> {
    c.chiave().into_bytes()
}

/// Whether `b` is an Identificatore's minute as the standard writes it (`YYYY-MM-DD_HH:MM`).
fn e_minuto(b: &[u8]) -> bool {
    b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'_',
            13 => *c == b':',
            _ => c.is_ascii_digit(),
        })
}

/// The minute an Identificatore of the standard's form ends with (`..._YYYY-MM-DD_HH:MM`).
fn minuto_dell_id(id: &[u8]) -> Option<&[u8]> {
    let at = id.len().checked_sub(16)?;
    (at > 0 && id[at - 1] == b'_' && e_minuto(&id[at..])).then(|| &id[at..])
}

/// The key of an Identificatore in the ids index and the duplicate filter: its minute first,
/// then the id without it (`_` and the minute it ends with). Ids carry a counter reset every
/// minute before their date, so keyed by the id itself each new one lands beside the same
/// counter of every earlier minute, all over a tree far larger than the cache; keyed by
/// minute, new entries go at the tree's end and retention walks from the oldest. The minute is
/// not kept twice: three such keys are written per exchange, each costing sled several times
/// its length on disk. An id not of the standard's form goes after all of them, under `~`.
pub(super) fn chiave_id(id: &str) -> Vec<u8> {
    let id = id.as_bytes();
    let mut k = Vec::with_capacity(id.len());
    match minuto_dell_id(id) {
        Some(m) => {
            k.extend_from_slice(m);
            k.extend_from_slice(&id[..id.len() - 17]);
        }
        None => {
            k.push(b'~');
            k.extend_from_slice(id);
        }
    }
    k
}

/// The Identificatore a key of [`chiave_id`] holds; None for a key not of that form.
pub(super) fn id_della_chiave(k: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    match k.first()? {
        b'~' => Some(&k[1..])
            .filter(|id| minuto_dell_id(id).is_none())
            .map(std::borrow::Cow::Borrowed),
        _ => {
            let (m, resto) = (k.get(..16)?, k.get(16..)?);
            if !e_minuto(m) {
                return None;
            }
            let mut id = Vec::with_capacity(k.len() + 1);
            id.extend_from_slice(resto);
            id.push(b'_');
            id.extend_from_slice(m);
            Some(std::borrow::Cow::Owned(id))
        }
    }
}

/// The key [`chiave_id`] gives to what a key of an earlier layout holds, None for a key of
/// this layout: the id itself (before keys began with the minute), or the minute then the whole
/// id (before the minute was kept once).
pub(super) fn chiave_di_prima(k: &[u8]) -> Option<Vec<u8>> {
    if k.first() == Some(&b'~') {
        return None;
    }
    if let (Some(m), Some(id)) = (k.get(..16), k.get(16..)) {
        if e_minuto(m) {
            // Minute first: of the earlier layout when the id after it ends with that minute.
            return (minuto_dell_id(id) == Some(m))
                .then(|| chiave_id(&String::from_utf8_lossy(id)));
        }
    }
    Some(chiave_id(&String::from_utf8_lossy(k)))
}

/// The first key of [`chiave_id`] whose minute is `minuto` (`YYYY-MM-DD_HH:MM`) or later.
pub(super) fn inizio_ids(minuto: &str) -> Vec<u8> {
    minuto.as_bytes().to_vec()
}

/// Where the keys of ids not of the standard's form begin (after every minute).
pub(super) const IDS_FUORI_FORMA: &[u8] = b"~";

/// The key of an EURES document: kind, code, then the forward's seq.
pub(super) fn chiave_eures(kind: &str, codice: &str, seq: u64) -> Vec<u8> {
    format!("{kind}/{codice}/{seq:020}").into_bytes()
}

/// The key of a diagnostic written at `ms`: the time (13 digits, so keys sort by time), then a
/// counter that keeps apart those of the same millisecond.
pub(super) fn chiave_diagnostico(ms: i64) -> Vec<u8> {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:013}-{:010}",
        ms.max(0),
        N.fetch_add(1, Ordering::Relaxed) % 10_000_000_000
    )
    .into_bytes()
}

/// The time (ms) a diagnostic's key starts with.
pub(super) fn ms_del_diagnostico(k: &[u8]) -> Option<i64> {
    std::str::from_utf8(k.get(..13)?).ok()?.parse().ok()
}

/// The first key of diagnostics at or after `ms`.
pub(super) fn inizio_diagnostici(ms: i64) -> Vec<u8> {
    format!("{:013}", ms.max(0)).into_bytes()
}

/// The sequence number a key starts with (exchanges, raw pieces, outbox entries).
pub(super) fn seq_di(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(..8)?.try_into().ok()?))
}

/// A time index key: ms since the epoch (sign bit flipped, so that keys sort as times do),
/// then the exchange's seq.
pub(super) fn chiave_ricevuto(ms: i64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&((ms as u64) ^ (1 << 63)).to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

/// The first time index key at or after `ms`.
pub(super) fn inizio_ricevuti(ms: i64) -> [u8; 8] {
    ((ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// How a duplicate-filter entry begins in its binary layout (earlier versions wrote JSON, which
/// begins with `{`): then the exchange's seq, the first time (ms), the repeats and the expiry (0
/// for none, else 1 and the ms), as LEB128 (times zigzag). About 18 bytes against 72: the filter
/// is written twice per exchange (the claim, then its settling).
const DUP_V1: u8 = 1;

pub(super) fn decode_dup(v: &[u8]) -> Result<DupEntry> {
    if v.first() == Some(&DUP_V1) {
        return leggi_dup(&v[1..]).ok_or_else(|| StoreError::corrupt("dup entry: does not decode"));
    }
    serde_json::from_slice(v).map_err(|e| StoreError::corrupt(format!("dup entry: {e}")))
}

fn leggi_dup(v: &[u8]) -> Option<DupEntry> {
    let mut l = Lettore(v);
    let d = DupEntry {
        seq: l.naturale()?,
        first_ms: l.intero()?,
        repeats: u32::try_from(l.naturale()?).ok()?,
        scade_ms: match l.byte()? {
            0 => None,
            1 => Some(l.intero()?),
            _ => return None,
        },
    };
    l.0.is_empty().then_some(d)
}

pub(super) fn encode_dup(d: &DupEntry) -> Vec<u8> {
    let mut b = Vec::with_capacity(24);
    b.push(DUP_V1);
    naturale(&mut b, d.seq);
    intero(&mut b, d.first_ms);
    naturale(&mut b, u64::from(d.repeats));
    match d.scade_ms {
        None => b.push(0),
        Some(ms) => {
            b.push(1);
            intero(&mut b, ms);
        }
    }
    b
}

/// A counter value: u32 BE (or u64 BE, as earlier checks admitted).
pub(super) fn contatore(v: &[u8]) -> Option<u64> {
    match v.len() {
        4 => Some(u32::from_be_bytes(v.try_into().ok()?) as u64),
        8 => Some(u64::from_be_bytes(v.try_into().ok()?)),
        _ => None,
    }
}

/// How a modulo's record begins (before [`comprimi`]) since its document is kept as it is beside
/// the record's JSON: then the JSON's length (u32 LE), the JSON without `xml`, the document.
/// Earlier versions wrote the JSON alone, with the document escaped in it: a 400 KB CV cost a
/// pass of JSON escaping to write and of unescaping to read.
pub(super) const MODULO_V2: [u8; 4] = *b"\xffMD2";

/// How a modulo's record begins since the scheda's two objects are kept as text beside the
/// JSON too: after the JSON (as in [`MODULO_V2`]), `pubblico` and `contatto`, each as its
/// length + 1 (u32 LE; 0: none) and its text, then the document. Inside the JSON, serde_json
/// would check each object as JSON on every write and read (a 50 KB CV's are 30 KB); these
/// are the texts the scheda wrote, and they are read back as they are.
pub(super) const MODULO_V3: [u8; 4] = *b"\xffMD3";

/// A modulo's record: [`MODULO_V3`]. The document and the scheda's objects are taken out of
/// `m` while its JSON is written (no copy of them), and put back.
pub(super) fn codifica_modulo(m: &mut crate::store::StoredModulo) -> Vec<u8> {
    let xml = std::mem::take(&mut m.xml);
    let (pubblico, contatto) = m
        .scheda
        .as_mut()
        .map_or((None, None), |s| (s.pubblico.take(), s.contatto.take()));
    let json = codifica(m);
    let testi = [&pubblico, &contatto].map(|o| o.as_ref().map(|j| j.testo().as_bytes()));
    let lunghi: usize = testi.iter().flatten().map(|t| t.len()).sum();
    let mut v = Vec::with_capacity(MODULO_V3.len() + 12 + json.len() + lunghi + xml.len());
    v.extend_from_slice(&MODULO_V3);
    v.extend_from_slice(&(json.len() as u32).to_le_bytes());
    v.extend_from_slice(&json);
    for t in testi {
        let n = t.map_or(0, |t| t.len() as u32 + 1);
        v.extend_from_slice(&n.to_le_bytes());
        v.extend_from_slice(t.unwrap_or_default());
    }
    v.extend_from_slice(xml.as_bytes());
    m.xml = xml;
    if let Some(s) = m.scheda.as_mut() {
        (s.pubblico, s.contatto) = (pubblico, contatto);
    }
    v
}

/// A modulo's record of any layout (after [`svela`]).
pub(super) fn decodifica_modulo(v: &[u8]) -> Result<crate::store::StoredModulo> {
    let (resto, v3) = match (v.strip_prefix(&MODULO_V3), v.strip_prefix(&MODULO_V2)) {
        (Some(r), _) => (r, true),
        (None, Some(r)) => (r, false),
        (None, None) => return decodifica("modulo", v),
    };
    let guasto = |cosa: &str| StoreError::corrupt(format!("modulo: {cosa}"));
    let mut l = Lettore(resto);
    let len = l
        .u32_le()
        .ok_or_else(|| guasto("a record shorter than its header"))? as usize;
    let json = l
        .prendi(len)
        .ok_or_else(|| guasto("a record shorter than its JSON"))?;
    let mut m: crate::store::StoredModulo = decodifica("modulo", json)?;
    if v3 {
        use crate::modulo::scheda::Json;
        let mut testo = || -> Result<Option<Json>> {
            let n = l
                .u32_le()
                .ok_or_else(|| guasto("a record shorter than its objects"))?;
            let Some(n) = (n as usize).checked_sub(1) else {
                return Ok(None);
            };
            let t = l
                .prendi(n)
                .ok_or_else(|| guasto("a record shorter than its objects"))?;
            let t = std::str::from_utf8(t).map_err(|_| guasto("an object not in UTF-8"))?;
            Ok(Some(Json::dal_testo(t)))
        };
        let (pubblico, contatto) = (testo()?, testo()?);
        if let Some(s) = m.scheda.as_mut() {
            s.pubblico = pubblico;
            s.contatto = contatto;
        }
    }
    m.xml = String::from_utf8(l.0.to_vec()).map_err(|_| guasto("a document not in UTF-8"))?;
    Ok(m)
}

/// A stored modulo larger than a piece is kept in the `moduli_pezzi` tree, keyed
/// `moduli key | 0 | version (u64 BE) | n (u32 BE)`, and its `moduli` value is this marker, the
/// version and the length (u64 BE each). sled rewrites whole nodes, values included, as keys are
/// added around them: 50 KB moduli kept whole made every exchange write about 290 KB.
/// Pieces go first and the marker last (a crash leaves at most unreferenced pieces); pieces of an
/// earlier version stay until the purge, so a backup that read the marker finds them.
pub(super) const MODULO_A_PEZZI: &[u8; 4] = b"\xffPZ1";

#[cfg(test)]
pub(super) fn chiave_pezzo_modulo(chiave: &[u8], versione: u64, n: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(chiave.len() + 13);
    k.extend_from_slice(chiave);
    k.push(0);
    k.extend_from_slice(&versione.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}

/// The version and length a `moduli` value in pieces points to; None for a value kept whole.
pub(super) fn segnaposto(v: &[u8]) -> Option<(u64, u64)> {
    let rest = v.strip_prefix(&MODULO_A_PEZZI[..])?;
    let versione = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let len = u64::from_be_bytes(rest.get(8..16)?.try_into().ok()?);
    Some((versione, len))
}

/// Marks a record whose raw messages are in the `raw` tree, where the request length would be.
const RAW_A_PEZZI: u32 = u32::MAX;
/// The same, each message compressed whole (one zstd frame) before it was cut in pieces.
const RAW_A_PEZZI_Z: u32 = u32::MAX - 1;
/// Marks a record whose request is kept without the modulo's document it carries (escaped as
/// element text): the document is the stored modulo's, written in the same journal entry, and
/// the record needs it to give back its request. It would be kept twice otherwise, in the
/// record and in the modulo (about 400 bytes of a 1 KB exchange's 2.2 KB in the log).
const RAW_SENZA_DOCUMENTO: u32 = u32::MAX - 2;

/// How a zstd frame begins. The store's records never do when not compressed: an exchange
/// record begins with its meta's length (this would be 4 GiB), a modulo with `{` or
/// [`MODULO_A_PEZZI`].
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// zstd's fastest level: XML and JSON shrink 3-4x at it, for a few µs per KB; for values
/// larger than [`PICCOLO`] (compressed without the dictionary).
const LIVELLO: i32 = 1;

/// The level of values compressed against the dictionary: with its tables prepared once, as
/// fast as level 1 on records of a few KB, and about 10 % smaller (a 1 KB exchange's record and
/// modulo 1,653 bytes against 1,843).
const LIVELLO_DIZIONARIO: i32 = 3;

/// The level of an exchange's record: lazy matching finds the busta of the request again in
/// the answer's (a 1 KB exchange's record 675 bytes against 852 at level 3, for about 10 µs
/// more); a modulo gains nothing from it.
const LIVELLO_RECORD: i32 = 5;

/// Records up to this size are compressed at [`LIVELLO_RECORD`]: on larger ones its slower
/// pace would cost more than the bytes it saves. A 1 KB unsigned exchange's record is under it;
/// a signed one's (a 7 KB request, a 5 KB answer, much of both base64) is over it, and level 3
/// spares it about 25 µs for some 100 bytes more.
const RECORD_PICCOLO: usize = 8 * 1024;

/// Values up to this size are compressed against the dictionary; larger ones gain little from
/// it and would pay level 3's slower pace on every byte.
const PICCOLO: usize = 64 * 1024;

/// The most a compressed record may hold once decompressed (a damaged header claiming more
/// is refused, not allocated).
const MAX_DECOMPRESSO: u64 = 1 << 30;

thread_local! {
    // A context per thread: creating one per record costs more than compressing it.
    static COMPRESSORE: std::cell::RefCell<zstd::block::Compressor> =
        std::cell::RefCell::new(zstd::block::Compressor::new());
    static DECOMPRESSORE: std::cell::RefCell<zstd::block::Decompressor> =
        std::cell::RefCell::new(zstd::block::Decompressor::new());
}

/// `v` as one zstd frame (with its length in the header); None if zstd failed (for want of
/// memory: its destination is sized by its own bound).
fn prova_a_comprimere(v: &[u8]) -> Option<Vec<u8>> {
    COMPRESSORE
        .with(|c| c.borrow_mut().compress(v, LIVELLO))
        .ok()
}

/// How a value compressed against [`DIZIONARIO_1`] begins, before its zstd frame (as an exchange
/// record's meta length it would be over 800 MB; a modulo begins with `{`, a summary with its
/// version).
const CON_DIZIONARIO_1: [u8; 4] = *b"\xffZD1";

/// The standard's vocabulary (busta, the moduli's element names, the records' JSON keys) as a
/// zstd raw-content dictionary, written by `dizionario.py` beside this file: a 1 KB exchange's
/// record compresses to about 970 bytes against it, 1,690 without. Part of the store's format:
/// these bytes never change (a test pins them); another dictionary gets another marker.
const DIZIONARIO_1: &[u8] = include_bytes!("dizionario-1.bin");

/// The dictionary prepared once for zstd (its tables for level [`LIVELLO_DIZIONARIO`]), for
/// every thread.
fn dizionario_1() -> &'static (
    zstd::zstd_safe::CDict<'static>,
    zstd::zstd_safe::DDict<'static>,
) {
    static D: std::sync::OnceLock<(
        zstd::zstd_safe::CDict<'static>,
        zstd::zstd_safe::DDict<'static>,
    )> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        (
            zstd::zstd_safe::create_cdict(DIZIONARIO_1, LIVELLO_DIZIONARIO),
            zstd::zstd_safe::create_ddict(DIZIONARIO_1),
        )
    })
}

/// The dictionary's tables for [`LIVELLO_RECORD`].
fn dizionario_1_record() -> &'static zstd::zstd_safe::CDict<'static> {
    static D: std::sync::OnceLock<zstd::zstd_safe::CDict<'static>> = std::sync::OnceLock::new();
    D.get_or_init(|| zstd::zstd_safe::create_cdict(DIZIONARIO_1, LIVELLO_RECORD))
}

/// [`comprimi`] for an exchange's record, at [`LIVELLO_RECORD`] up to [`RECORD_PICCOLO`].
fn comprimi_record(v: &[u8]) -> Vec<u8> {
    (v.len() <= RECORD_PICCOLO)
        .then(|| prova_record(v))
        .flatten()
        .unwrap_or_else(|| comprimi(v))
}

thread_local! {
    // A context per thread for the records, the dictionary's tables referenced once.
    static CCTX_RECORD: std::cell::RefCell<Option<zstd::zstd_safe::CCtx<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// `v` as [`CON_DIZIONARIO_1`] and a zstd frame against the dictionary at [`LIVELLO_RECORD`],
/// its literals left as they are: what neither the dictionary nor the request's busta matches
/// in a small record is ids, times and numbers, which Huffman coding does not shrink (500
/// records of a bench store: 344 bytes against 345, 11.8 µs against 14.4). None if zstd
/// failed.
fn prova_record(v: &[u8]) -> Option<Vec<u8>> {
    use zstd::zstd_safe::{CParameter, ParamSwitch};
    CCTX_RECORD.with(|c| {
        let mut c = c.borrow_mut();
        if c.is_none() {
            let mut nuovo = zstd::zstd_safe::create_cctx();
            nuovo.ref_cdict(dizionario_1_record()).ok()?;
            nuovo
                .set_parameter(CParameter::LiteralCompressionMode(ParamSwitch::Disable))
                .ok()?;
            *c = Some(nuovo);
        }
        let cctx = c.as_mut()?;
        // One call: the frame says its content's size, which [`svela`] requires.
        con_dizionario(v.len(), |dst| cctx.compress2(dst, v).ok())
    })
}

/// [`CON_DIZIONARIO_1`] and the frame `comprimi` writes of a value of `len` bytes into the
/// room zstd may need; None if it failed.
fn con_dizionario(
    len: usize,
    comprimi: impl FnOnce(&mut [u8]) -> Option<usize>,
) -> Option<Vec<u8>> {
    let testa = CON_DIZIONARIO_1.len();
    let mut out = vec![0u8; testa + zstd::zstd_safe::compress_bound(len)];
    out[..testa].copy_from_slice(&CON_DIZIONARIO_1);
    let n = comprimi(&mut out[testa..])?;
    out.truncate(testa + n);
    Some(out)
}

thread_local! {
    static CCTX: std::cell::RefCell<zstd::zstd_safe::CCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::create_cctx());
    static DCTX: std::cell::RefCell<zstd::zstd_safe::DCtx<'static>> =
        std::cell::RefCell::new(zstd::zstd_safe::create_dctx());
}

/// `v` as [`CON_DIZIONARIO_1`] and a zstd frame against the dictionary; None if zstd failed.
fn prova_con_dizionario(v: &[u8], cdict: &zstd::zstd_safe::CDict<'static>) -> Option<Vec<u8>> {
    con_dizionario(v.len(), |dst| {
        CCTX.with(|c| c.borrow_mut().compress_using_cdict(dst, v, cdict))
            .ok()
    })
}

/// `v` compressed against the dictionary, or without it, or as it is if zstd could not: each
/// reads back through [`svela`].
pub(super) fn comprimi(v: &[u8]) -> Vec<u8> {
    (v.len() <= PICCOLO)
        .then(|| prova_con_dizionario(v, &dizionario_1().0))
        .flatten()
        .or_else(|| prova_a_comprimere(v))
        .unwrap_or_else(|| v.to_vec())
}

/// A value as it was before [`comprimi`]; a value that is no zstd frame is returned as it is.
pub(super) fn svela(v: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>> {
    if let Some(frame) = v.strip_prefix(&CON_DIZIONARIO_1) {
        let n = zstd::zstd_safe::get_frame_content_size(frame);
        if n > MAX_DECOMPRESSO {
            return Err(StoreError::corrupt(
                "a compressed record without a valid length",
            ));
        }
        let mut out = Vec::with_capacity(n as usize);
        DCTX.with(|d| {
            d.borrow_mut()
                .decompress_using_ddict(&mut out, frame, &dizionario_1().1)
        })
        .map_err(|e| {
            StoreError::corrupt(format!(
                "a compressed record: {}",
                zstd::zstd_safe::get_error_name(e)
            ))
        })?;
        if out.len() as u64 != n {
            return Err(StoreError::corrupt(
                "a compressed record shorter than its header says",
            ));
        }
        return Ok(std::borrow::Cow::Owned(out));
    }
    if !v.starts_with(&ZSTD_MAGIC) {
        return Ok(std::borrow::Cow::Borrowed(v));
    }
    decomprimi(v).map(std::borrow::Cow::Owned)
}

/// The bytes of one zstd frame.
pub(super) fn decomprimi(v: &[u8]) -> Result<Vec<u8>> {
    let n = zstd::zstd_safe::get_frame_content_size(v);
    if n > MAX_DECOMPRESSO {
        return Err(StoreError::corrupt(
            "a compressed record without a valid length",
        ));
    }
    DECOMPRESSORE
        .with(|d| d.borrow_mut().decompress(v, n as usize))
        .map_err(|e| StoreError::corrupt(format!("a compressed record: {e}")))
}

/// Record layout, compressed whole ([`comprimi`]; earlier versions wrote it as it is): u32 LE
/// meta length, meta JSON, then u32 LE request length, request, response. Earlier versions
/// kept the messages of a large exchange in the `raw` tree (keyed seq | part | piece) and wrote
/// in their place `RAW_A_PEZZI_Z` (or `RAW_A_PEZZI`, messages not compressed), u64 LE request
/// length, u64 LE response length; such records still read.
pub(super) fn encode_exchange(ex: &Exchange, senza_documento: Option<(usize, usize)>) -> Vec<u8> {
    comprimi_record(&encode_exchange_in_chiaro(ex, senza_documento))
}

/// How [`crate::xml::escape_text`] writes a byte of element text.
fn escapato(b: &u8) -> &[u8] {
    crate::xml::escape_text_byte(*b).map_or(std::slice::from_ref(b), str::as_bytes)
}

/// Where the modulo's document `xml`, escaped as element text byte for byte as
/// [`crate::xml::escape_text`] writes it, lies in `request`, and its length there. Found by the
/// escaped form of its first bytes, then checked along the request without writing the
/// escaped document out (a 400 KB CV is one pass).
pub(super) fn documento_nella_richiesta(request: &[u8], xml: &str) -> Option<(usize, usize)> {
    let xml = xml.as_bytes();
    // Not worth a second read for a small document.
    if xml.len() < 256 {
        return None;
    }
    let testa: Vec<u8> = xml[..64].iter().flat_map(escapato).copied().collect();
    let mut da = 0;
    while let Some(i) = memchr::memmem::find(&request[da..], &testa) {
        let at = da + i;
        if let Some(fine) = escapato_a(request, at, xml) {
            return Some((at, fine - at));
        }
        da = at + 1;
    }
    None
}

/// Where `xml`, escaped, ends in `request` if it is there from `at`. The bytes equal in both
/// are passed eight at a time; where they differ, the document's byte must be one
/// [`crate::xml::escape_text`] escapes, and the request must hold its escape. A `&` stops the
/// run first, since its escape begins with itself; the other bytes escaped, passed as equal,
/// would leave themselves in the request, which escaped text never holds, and the request's
/// span is searched for them once at the end. (Should `escape_text` escape more bytes than
/// [`crate::xml::escape_text_byte`] names, a document with them is only not found, and its
/// request kept whole.)
fn escapato_a(request: &[u8], at: usize, xml: &[u8]) -> Option<usize> {
    let fine = uguale_escapato(request, at, xml)?;
    memchr::memchr3(b'<', b'>', b'\r', &request[at..fine])
        .is_none()
        .then_some(fine)
}

/// [`escapato_a`] but for its last check.
fn uguale_escapato(request: &[u8], mut r: usize, xml: &[u8]) -> Option<usize> {
    let prossimo_amp = |da: usize| memchr::memchr(b'&', &xml[da..]).map_or(xml.len(), |k| da + k);
    let mut amp = prossimo_amp(0);
    let mut i = 0;
    while i < xml.len() {
        let n = prefisso_comune(request.get(r..)?, &xml[i..amp]);
        r += n;
        i += n;
        let Some(&b) = xml.get(i) else { break };
        let e = crate::xml::escape_text_byte(b)?.as_bytes();
        if request.get(r..r + e.len())? != e {
            return None;
        }
        r += e.len();
        i += 1;
        if i > amp {
            amp = prossimo_amp(i);
        }
    }
    Some(r)
}

/// How many bytes `a` and `b` have equal from their start, compared eight at a time.
fn prefisso_comune(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut i = 0;
    while let (Some(x), Some(y)) = (swar::parola(a, i), swar::parola(b, i)) {
        if x != y {
            return i + swar::primo(x ^ y);
        }
        i += 8;
    }
    i + a[i..]
        .iter()
        .zip(&b[i..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The request of a [`Raw::SenzaDocumento`] record, with the modulo's document `xml` put back.
pub(super) fn con_documento(request: &[u8], at: usize, len: usize, xml: &str) -> Result<Vec<u8>> {
    let escapato = crate::xml::escape_text(xml);
    if escapato.len() != len || at > request.len() {
        return Err(StoreError::corrupt(
            "exchange record: the modulo's document does not fit its request",
        ));
    }
    let mut out = Vec::with_capacity(request.len() + len);
    out.extend_from_slice(&request[..at]);
    out.extend_from_slice(escapato.as_bytes());
    out.extend_from_slice(&request[at..]);
    Ok(out)
}

/// The record before compression; with `senza_documento` (`at`, `len`), the request without the
/// `len` bytes at `at` (the modulo's document): after the meta, [`RAW_SENZA_DOCUMENTO`], then
/// `at`, `len` and the request's remaining length (u32 LE each), the request without them, the
/// response.
fn encode_exchange_in_chiaro(ex: &Exchange, senza_documento: Option<(usize, usize)>) -> Vec<u8> {
    let meta = serde_json::to_vec(ex).unwrap_or_default();
    let (at, len) = senza_documento.unwrap_or((ex.request.len(), 0));
    let (testa, coda) = (&ex.request[..at], &ex.request[at + len..]);
    let mut v = Vec::with_capacity(20 + meta.len() + ex.request.len() - len + ex.response.len());
    v.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    v.extend_from_slice(&meta);
    if senza_documento.is_some() {
        for n in [RAW_SENZA_DOCUMENTO, at as u32, len as u32] {
            v.extend_from_slice(&n.to_le_bytes());
        }
    }
    v.extend_from_slice(&((testa.len() + coda.len()) as u32).to_le_bytes());
    v.extend_from_slice(testa);
    v.extend_from_slice(coda);
    v.extend_from_slice(&ex.response);
    v
}

/// The key of piece `n` of a message (`parte` 0: request, 1: response) of exchange `seq`.
#[cfg(test)]
pub(super) fn chiave_pezzo(seq: u64, parte: u8, n: u32) -> [u8; 13] {
    let mut k = [0u8; 13];
    k[..8].copy_from_slice(&seq.to_be_bytes());
    k[8] = parte;
    k[9..].copy_from_slice(&n.to_be_bytes());
    k
}

/// Where a record's raw messages are.
pub(super) enum Raw<'a> {
    /// In the record.
    Dentro(&'a [u8], &'a [u8]),
    /// In the record, the request without the `len` bytes at `at`: the modulo's document,
    /// escaped ([`RAW_SENZA_DOCUMENTO`]).
    SenzaDocumento {
        request: &'a [u8],
        at: usize,
        len: usize,
        response: &'a [u8],
    },
    /// In the `raw` tree, with their lengths there, and whether each is compressed.
    APezzi(u64, u64, bool),
}

/// An exchange record as [`encode_exchange`] wrote it, once through [`svela`].
pub(super) fn decode_exchange(v: &[u8]) -> Result<(Exchange, Raw<'_>)> {
    let corrupt = || StoreError::corrupt("exchange record");
    let bytes = |at: usize, n: usize| v.get(at..at + n).ok_or_else(corrupt);
    let u32_at = |at: usize| -> Result<u32> {
        Ok(u32::from_le_bytes(
            bytes(at, 4)?.try_into().map_err(|_| corrupt())?,
        ))
    };
    let u64_at = |at: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(
            bytes(at, 8)?.try_into().map_err(|_| corrupt())?,
        ))
    };
    let ml = u32_at(0)? as usize;
    let meta = bytes(4, ml)?;
    let ex: Exchange =
        serde_json::from_slice(meta).map_err(|e| StoreError::corrupt(format!("exchange: {e}")))?;
    let rl = u32_at(4 + ml)?;
    let raw = if rl == RAW_SENZA_DOCUMENTO {
        let (at, len, n) = (
            u32_at(8 + ml)? as usize,
            u32_at(12 + ml)? as usize,
            u32_at(16 + ml)? as usize,
        );
        let start = 20 + ml;
        Raw::SenzaDocumento {
            request: v.get(start..start + n).ok_or_else(corrupt)?,
            at,
            len,
            response: v.get(start + n..).ok_or_else(corrupt)?,
        }
    } else if rl == RAW_A_PEZZI || rl == RAW_A_PEZZI_Z {
        Raw::APezzi(u64_at(8 + ml)?, u64_at(16 + ml)?, rl == RAW_A_PEZZI_Z)
    } else {
        let start = 8 + ml;
        let rl = rl as usize;
        Raw::Dentro(
            v.get(start..start + rl).ok_or_else(corrupt)?,
            v.get(start + rl..).ok_or_else(corrupt)?,
        )
    };
    Ok((ex, raw))
}

/// When the exchange of a stored record was received (ms since the epoch).
pub(super) fn ricevuto_di(v: &[u8]) -> Result<i64> {
    // A record kept in the log: its time is beside its pointer.
    if let Some(ms) = super::registro::Puntatore::ms(v) {
        return Ok(ms);
    }
    Ok(decode_exchange(&svela(v)?)?.0.received_ms())
}

/// JSON of a record, or a corrupt-record error naming what it is.
pub(super) fn decodifica<T: serde::de::DeserializeOwned>(cosa: &str, v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| StoreError::corrupt(format!("{cosa}: {e}")))
}

/// How a summary in the `sommari` tree begins: its layout's version. A summary is about 90
/// bytes this way, against about 200 as compressed JSON; every exchange that stores a modulo
/// writes one.
const SOMMARIO_V1: u8 = 1;

/// A summary of a modulo as its tree keeps it: the version, then each field in order, numbers
/// as LEB128 (signed ones zigzag), strings by their length, an absent value as 0 where its
/// presence would be 1 (or its length + 1).
pub(super) fn codifica_sommario(s: &crate::store::Sommario) -> Vec<u8> {
    use crate::modulo::stato::StatoModulo as S;
    let mut b = Vec::with_capacity(96);
    b.push(SOMMARIO_V1);
    testo(&mut b, &s.codice);
    b.push(match s.stato {
        S::Attivo => 0,
        S::Chiuso => 1,
        S::Rettificato => 2,
        S::Scaduto => 3,
    });
    for t in [&s.inserita, &s.aggiornata] {
        intero(&mut b, t.timestamp_millis());
        intero(&mut b, t.offset().local_minus_utc() as i64);
    }
    match s.scadenza {
        None => b.push(0),
        Some(d) => {
            b.push(1);
            intero(&mut b, chrono::Datelike::num_days_from_ce(&d) as i64);
        }
    }
    match &s.scheda {
        None => b.push(0),
        Some(r) => {
            b.push(1);
            naturale(&mut b, r.professioni.len() as u64);
            for p in r.professioni.iter() {
                testo(&mut b, p);
            }
            for v in [&r.comune, &r.provincia, &r.regione] {
                match v {
                    None => b.push(0),
                    Some(v) => {
                        naturale(&mut b, v.len() as u64 + 1);
                        b.extend_from_slice(v.as_bytes());
                    }
                }
            }
            testo(&mut b, &r.testo);
        }
    }
    // A long search text (a CV's words) compresses; the rest would only grow by a header.
    if b.len() > SOMMARIO_DA_COMPRIMERE {
        let z = comprimi(&b);
        if z.len() < b.len() {
            return z;
        }
    }
    b
}

/// Summaries longer than this are stored compressed.
const SOMMARIO_DA_COMPRIMERE: usize = 256;

pub(super) fn decodifica_sommario(v: &[u8]) -> Result<crate::store::Sommario> {
    leggi_sommario(&svela(v)?)
        .ok_or_else(|| StoreError::corrupt("a summary of a modulo does not decode"))
}

fn leggi_sommario(v: &[u8]) -> Option<crate::store::Sommario> {
    use crate::modulo::ricerca::Ricercabile;
    use crate::modulo::stato::StatoModulo as S;
    let mut l = Lettore(v);
    if l.byte()? != SOMMARIO_V1 {
        return None;
    }
    let codice = l.testo()?.to_string();
    let stato = match l.byte()? {
        0 => S::Attivo,
        1 => S::Chiuso,
        2 => S::Rettificato,
        3 => S::Scaduto,
        _ => return None,
    };
    let mut ora = || {
        let ms = l.intero()?;
        let offset = chrono::FixedOffset::east_opt(i32::try_from(l.intero()?).ok()?)?;
        Some(chrono::DateTime::from_timestamp_millis(ms)?.with_timezone(&offset))
    };
    let (inserita, aggiornata) = (ora()?, ora()?);
    let scadenza = match l.byte()? {
        0 => None,
        1 => Some(chrono::NaiveDate::from_num_days_from_ce_opt(
            i32::try_from(l.intero()?).ok()?,
        )?),
        _ => return None,
    };
    let scheda = match l.byte()? {
        0 => None,
        1 => {
            let n = usize::try_from(l.naturale()?).ok()?;
            let mut professioni = Vec::with_capacity(n.min(64));
            for _ in 0..n {
                professioni.push(Box::from(l.testo()?));
            }
            let mut forse = || -> Option<Option<Box<str>>> {
                match l.naturale()? {
                    0 => Some(None),
                    n => Some(Some(Box::from(l.stringa(usize::try_from(n - 1).ok()?)?))),
                }
            };
            let (comune, provincia, regione) = (forse()?, forse()?, forse()?);
            Some(Ricercabile {
                professioni: professioni.into(),
                comune,
                provincia,
                regione,
                testo: Box::from(l.testo()?),
            })
        }
        _ => return None,
    };
    l.0.is_empty().then_some(crate::store::Sommario {
        codice,
        stato,
        inserita,
        aggiornata,
        scadenza,
        scheda,
    })
}

pub(super) fn naturale(b: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        b.push((n as u8) | 0x80);
        n >>= 7;
    }
    b.push(n as u8);
}

pub(super) fn intero(b: &mut Vec<u8>, n: i64) {
    naturale(b, ((n << 1) ^ (n >> 63)) as u64);
}

fn testo(b: &mut Vec<u8>, s: &str) {
    naturale(b, s.len() as u64);
    b.extend_from_slice(s.as_bytes());
}

/// Reads what [`codifica_sommario`] wrote; None at the first thing out of place.
pub(super) struct Lettore<'a>(pub(super) &'a [u8]);

impl<'a> Lettore<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (b, resto) = self.0.split_first()?;
        self.0 = resto;
        Some(*b)
    }
    pub(super) fn naturale(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }
    pub(super) fn intero(&mut self) -> Option<i64> {
        let n = self.naturale()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }
    /// The next `n` bytes.
    fn prendi(&mut self, n: usize) -> Option<&'a [u8]> {
        let (s, resto) = self.0.split_at_checked(n)?;
        self.0 = resto;
        Some(s)
    }
    fn u32_le(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.prendi(4)?.try_into().ok()?))
    }
    fn stringa(&mut self, n: usize) -> Option<&'a str> {
        std::str::from_utf8(self.prendi(n)?).ok()
    }
    fn testo(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.naturale()?).ok()?;
        self.stringa(n)
    }
}

pub(super) fn codifica<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Serialising the store's own records cannot fail (no maps with non-string keys).
    serde_json::to_vec(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_keys_sort_as_times_across_the_epoch() {
        let mut v = [
            chiave_ricevuto(5, 1),
            chiave_ricevuto(-5, 9),
            chiave_ricevuto(0, 3),
            chiave_ricevuto(1_764_226_801_400, 2),
            chiave_ricevuto(5, 0),
        ];
        v.sort();
        let ms: Vec<i64> = v
            .iter()
            .map(|k| (u64::from_be_bytes(k[..8].try_into().unwrap()) ^ (1 << 63)) as i64)
            .collect();
        assert_eq!(ms, vec![-5, 0, 5, 5, 1_764_226_801_400]);
        assert!(inizio_ricevuti(5)[..] <= chiave_ricevuto(5, 0)[..8]);
        assert!(inizio_ricevuti(6)[..] > chiave_ricevuto(5, u64::MAX)[..]);
    }

    /// The document's place as a plain search of its escaped text finds it.
    fn dove_semplice(request: &[u8], xml: &str) -> Option<(usize, usize)> {
        let e = crate::xml::escape_text(xml);
        memchr::memmem::find(request, e.as_bytes()).map(|at| (at, e.len()))
    }

    #[test]
    fn the_document_is_found_in_its_request_where_a_plain_search_finds_it() {
        // Documents dense in the bytes escaped and in the bytes of their escapes ("&amp;" in
        // the text escapes to "&amp;amp;"), among requests that hold them whole, spoilt by one
        // byte, cut short, or after a spoilt copy.
        let mut seme = 0x2545_f491_4f6c_dd1d_u64;
        let mut caso = |n: u64| {
            seme ^= seme << 13;
            seme ^= seme >> 7;
            seme ^= seme << 17;
            seme % n
        };
        let lettere: Vec<char> = "<>&\r;amplgt#13 xè".chars().collect();
        let (mut trovati, mut no) = (0, 0);
        for _ in 0..3000 {
            let len = 256 + caso(700) as usize;
            let xml: String = (0..len)
                .map(|_| lettere[caso(lettere.len() as u64) as usize])
                .collect();
            let e = crate::xml::escape_text(&xml).into_owned().into_bytes();
            let mut request = b"<soap:Body><x:Candidatura>".to_vec();
            match caso(4) {
                0 => request.extend_from_slice(&e),
                1 => {
                    let mut guasto = e.clone();
                    let k = 64 + caso((guasto.len() - 64) as u64) as usize;
                    guasto[k] = b"<&a;x\r"[caso(6) as usize];
                    request.extend_from_slice(&guasto);
                }
                2 => request.extend_from_slice(&e[..e.len() - 1 - caso(8) as usize]),
                _ => {
                    let mut guasto = e.clone();
                    let k = guasto.len() - 1 - caso(40) as usize;
                    guasto[k] ^= 1;
                    request.extend_from_slice(&guasto);
                    request.extend_from_slice(&e);
                }
            }
            request.extend_from_slice(b"</x:Candidatura></soap:Body>");
            let atteso = dove_semplice(&request, &xml);
            assert_eq!(documento_nella_richiesta(&request, &xml), atteso, "{xml:?}");
            if atteso.is_some() {
                trovati += 1;
            } else {
                no += 1;
            }
        }
        // Both answers were asked for often enough to mean something.
        assert!(trovati > 1000 && no > 500, "{trovati} found, {no} not");
        // The bytes the search looks for at the end are all the escaped ones but `&`.
        let escapati: Vec<u8> = (0..=255u8)
            .filter(|&b| crate::xml::escape_text_byte(b).is_some() && b != b'&')
            .collect();
        assert_eq!(escapati, b"\r<>");
    }

    #[test]
    fn records_read_back_as_they_were_written_at_every_size() {
        // Small records go through their own context (literals left raw), larger ones through
        // the modulo's; each frame must say its size and decompress to the record.
        let mut v = Vec::new();
        for n in [0, 1, 100, 4_000, RECORD_PICCOLO, RECORD_PICCOLO + 1, 70_000] {
            while v.len() < n {
                v.extend_from_slice(b"<eGov_IT:Intestazione>SOGGETTO-");
                v.extend_from_slice(v.len().to_string().as_bytes());
            }
            v.truncate(n);
            let c = comprimi_record(&v);
            assert_eq!(&*svela(&c).unwrap(), &v[..], "{n} bytes");
            if (1..=RECORD_PICCOLO).contains(&n) {
                assert!(
                    c.starts_with(&CON_DIZIONARIO_1) && c.len() < n.max(64),
                    "{n} bytes"
                );
            }
        }
    }

    #[test]
    fn diagnostic_keys_sort_by_time() {
        let a = chiave_diagnostico(1_000);
        let b = chiave_diagnostico(1_000);
        let c = chiave_diagnostico(999);
        assert!(a < b && c < a);
        assert_eq!(ms_del_diagnostico(&a), Some(1_000));
        assert!(inizio_diagnostici(1_000) <= a && inizio_diagnostici(1_001) > b);
    }

    #[test]
    fn id_keys_sort_by_minute_and_give_the_id_back() {
        let ids = [
            "EMILIA_EMILIASPCoopIT_0000002_2026-11-27_08:00",
            "EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:01",
            "LAZIO_LAZIOSPCoopIT_0000001_2026-11-26_23:59",
            "not-an-egov-id",
            "X_2026-11-27_08:00",
            "_2026-11-27_08:00",
            "A_B_1_2026-13-27_0800",
        ];
        let mut chiavi: Vec<Vec<u8>> = ids.iter().map(|i| chiave_id(i)).collect();
        for (k, id) in chiavi.iter().zip(ids) {
            assert_eq!(id_della_chiave(k).as_deref(), Some(id.as_bytes()), "{id}");
            assert_eq!(chiave_di_prima(k), None, "{id}: of this layout");
        }
        // The minute is kept once.
        assert_eq!(
            chiave_id(ids[0]),
            b"2026-11-27_08:00EMILIA_EMILIASPCoopIT_0000002".to_vec()
        );
        chiavi.sort();
        let ordine: Vec<Vec<u8>> = chiavi
            .iter()
            .map(|k| id_della_chiave(k).unwrap().into_owned())
            .collect();
        assert_eq!(
            ordine,
            [
                "LAZIO_LAZIOSPCoopIT_0000001_2026-11-26_23:59",
                "_2026-11-27_08:00",
                "EMILIA_EMILIASPCoopIT_0000002_2026-11-27_08:00",
                "X_2026-11-27_08:00",
                "EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:01",
                "A_B_1_2026-13-27_0800",
                "not-an-egov-id",
            ]
            .map(|s| s.as_bytes().to_vec())
        );
        // Keys of the earlier layouts are told apart and rekeyed: the id itself (before keys
        // began with the minute), the minute then the whole id (before it was kept once).
        for id in ids {
            let nuova = chiave_id(id);
            if nuova[0] == b'~' {
                assert_eq!(chiave_di_prima(id.as_bytes()), Some(nuova.clone()), "{id}");
                continue;
            }
            assert_eq!(id_della_chiave(id.as_bytes()), None, "{id}");
            assert_eq!(chiave_di_prima(id.as_bytes()), Some(nuova.clone()), "{id}");
            let prima = [&nuova[..16], id.as_bytes()].concat();
            assert_eq!(chiave_di_prima(&prima), Some(nuova), "{id}");
        }
        assert!(inizio_ids("2026-11-27_08:01") > chiave_id(ids[0]));
        assert!(inizio_ids("2026-11-27_08:01") <= chiave_id(ids[1]));
        assert!(IDS_FUORI_FORMA > &chiave_id(ids[1])[..]);
        assert!(IDS_FUORI_FORMA <= &chiave_id(ids[3])[..]);
    }

    #[test]
    fn summaries_read_back_as_written_and_a_damaged_one_is_refused() {
        use crate::modulo::ricerca::Ricercabile;
        use crate::modulo::stato::StatoModulo;
        use crate::store::Sommario;
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap();
        let pieno = Sommario {
            codice: "SILRM20260000000000000042".into(),
            stato: StatoModulo::Attivo,
            inserita: t("2026-11-27T10:00:00.123+01:00"),
            aggiornata: t("1969-12-31T23:59:59.999-09:30"),
            scadenza: chrono::NaiveDate::from_ymd_opt(2027, 1, 11),
            scheda: Some(Ricercabile {
                professioni: vec![Box::from("3.3.1.2.1"), Box::from("2.1")].into(),
                comune: Some(Box::from("H501")),
                provincia: None,
                regione: Some(Box::from("")),
                testo: Box::from("contabile città ".repeat(20).as_str()),
            }),
        };
        let vuoto = Sommario {
            codice: String::new(),
            stato: StatoModulo::Scaduto,
            scadenza: None,
            scheda: None,
            ..pieno.clone()
        };
        for s in [&pieno, &vuoto] {
            let b = codifica_sommario(s);
            let letto = decodifica_sommario(&b).unwrap();
            assert_eq!(&letto, s);
            // chrono compares instants only: the offsets (the local day a search filters on)
            // must come back too.
            assert_eq!(letto.inserita.offset(), s.inserita.offset());
            assert_eq!(letto.aggiornata.offset(), s.aggiornata.offset());
            // Cut anywhere, or with a byte more, it is refused (and nothing panics).
            for n in 0..b.len() {
                assert!(decodifica_sommario(&b[..n]).is_err(), "{n}");
            }
            let mut lungo = b.clone();
            lungo.push(0);
            assert!(decodifica_sommario(&lungo).is_err());
        }
        assert!(codifica_sommario(&vuoto).len() < 30);
        // The long search text made it a compressed one.
        assert!(codifica_sommario(&pieno).starts_with(&CON_DIZIONARIO_1));
        assert!(decodifica_sommario(b"{\"codice\":\"A\"}").is_err());
        assert!(decodifica_sommario(&[
            1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
        ])
        .is_err());
    }

    #[test]
    fn the_dictionary_of_format_1_never_changes() {
        // Stores written with it read only with these bytes: a new dictionary is a new marker
        // and a new file, not an edit of this one.
        let digest: String = openssl::sha::sha256(DIZIONARIO_1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            digest,
            "ab68bfabdb80ef1def00e7f5d160cd0a9de1a298dbaa44df8b50faa6f2e449dc"
        );
    }

    #[test]
    fn records_compress_against_the_dictionary_and_every_earlier_layout_still_reads() {
        let record = br#"{"seq":7,"direction":"in","mittente":"SPC/MinisteroLavoro","destinatario":"SPC/LAZIO","servizio":"SPC/ClicLavoro","azione":"InvioVacancy","profilo":"EGOV_IT_ServizioSincrono","outcome":"ok","http_status":200}<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><eGov_IT:Intestazione xmlns:eGov_IT="http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/"><eGov_IT:IntestazioneMessaggio><eGov_IT:Mittente><eGov_IT:IdentificativoParte tipo="SPC">MinisteroLavoro</eGov_IT:IdentificativoParte></eGov_IT:Mittente></eGov_IT:IntestazioneMessaggio></eGov_IT:Intestazione></soapenv:Header><soapenv:Body/></soapenv:Envelope>"#;
        let z = comprimi(record);
        assert!(z.starts_with(&CON_DIZIONARIO_1));
        let senza = prova_a_comprimere(record).unwrap();
        assert!(z.len() < senza.len(), "{} against {}", z.len(), senza.len());
        assert_eq!(&*svela(&z).unwrap(), &record[..]);
        // Compressed without the dictionary (2026-12-07) and not compressed (before): as they are.
        assert_eq!(&*svela(&senza).unwrap(), &record[..]);
        assert_eq!(&*svela(record).unwrap(), &record[..]);
        // Cut or damaged: refused as corrupt, never a panic.
        for n in CON_DIZIONARIO_1.len()..z.len() {
            assert!(svela(&z[..n]).is_err(), "{n}");
        }
        let mut guasto = z.clone();
        let ultimo = guasto.len() - 1;
        guasto[ultimo] ^= 0xff;
        guasto[CON_DIZIONARIO_1.len() + 8] ^= 0x55;
        assert!(svela(&guasto)
            .map(|v| v.into_owned() != record)
            .unwrap_or(true));
        // Many threads at once share the prepared dictionary, each with its own context.
        let fili: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let v = format!("{i}").repeat(2000).into_bytes();
                    assert_eq!(&*svela(&comprimi(&v)).unwrap(), &v[..]);
                })
            })
            .collect();
        for f in fili {
            f.join().unwrap();
        }
    }

    #[test]
    fn dup_entries_read_back_in_both_layouts() {
        for d in [
            DupEntry {
                seq: 0,
                first_ms: 0,
                repeats: 0,
                scade_ms: None,
            },
            DupEntry {
                seq: u64::MAX,
                first_ms: -1,
                repeats: u32::MAX,
                scade_ms: Some(1_796_000_000_000),
            },
        ] {
            let b = encode_dup(&d);
            assert_eq!(decode_dup(&b).unwrap(), d);
            assert_eq!(decode_dup(&serde_json::to_vec(&d).unwrap()).unwrap(), d);
            for n in 0..b.len() {
                assert!(decode_dup(&b[..n]).is_err(), "{n}");
            }
            let mut lungo = b.clone();
            lungo.push(0);
            assert!(decode_dup(&lungo).is_err());
        }
        let d = DupEntry {
            seq: 123_456,
            first_ms: 1_796_000_000_000,
            repeats: 0,
            scade_ms: Some(1_796_000_300_000),
        };
        assert!(encode_dup(&d).len() <= 20, "{}", encode_dup(&d).len());
    }
}
