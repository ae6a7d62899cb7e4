//! What is particular to the sled engine: its record layouts (raw messages and large moduli in
//! pieces, records of earlier versions), what survives a reopen, the index rebuilt at open.
//! What every engine must do is in `tests/store_contract.rs`.

use super::codec::{chiave_pezzo, PEZZO};
use super::*;
use crate::modulo::stato::StatoModulo;
use crate::store::{Direction, Outcome};

/// A fresh path for a store (also for the tests of the submodules).
pub(super) fn tmp(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pdd-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    p
}

pub(super) fn quando(s: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap()
}

/// `n` bytes that do not compress (xorshift from `seme`): pieces as many as the length says.
pub(super) fn casuali(n: usize, seme: u64) -> Vec<u8> {
    let mut x = seme | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// An accepted incoming exchange with small raw messages.
pub(super) fn ex(seq: u64, id: &str) -> Exchange {
    let mut e = Exchange::nuovo(seq, Direction::In, quando("2024-01-01T00:00:00.000+00:00"));
    e.answered_at = Some(e.received_at);
    e.request_id = Some(id.into());
    e.response_id = Some(format!("R{id}"));
    e.outcome = Outcome::Ok;
    e.http_status = 200;
    e.request = b"<req/>".to_vec();
    e.response = b"<resp/>".to_vec();
    e
}

/// The summaries of every Candidatura, by code.
async fn tutti(s: &SledStore) -> Vec<Sommario> {
    let mut v: Vec<Sommario> = s
        .sommari(Tipo::Candidatura, &|_| true)
        .await
        .unwrap()
        .iter()
        .map(|x| (**x).clone())
        .collect();
    v.sort_by(|a, b| a.codice.cmp(&b.codice));
    v
}

/// A stored Candidatura with a published view.
pub(super) fn candidatura(code: &str, stato: StatoModulo) -> StoredModulo {
    StoredModulo {
        kind: Tipo::Candidatura,
        code: code.into(),
        versione: "2.0".into(),
        stato,
        received_at: quando("2026-11-27T10:00:00.000+01:00"),
        updated_at: quando("2026-11-27T10:00:00.000+01:00"),
        request_id: None,
        mittente: None,
        scadenza: None,
        precedente: None,
        attuale: None,
        xml: "<x/>".into(),
        destinazioni: vec![],
        titolare: None,
        scheda: Some(crate::modulo::scheda::candidatura(&Default::default())),
    }
}

/// Changes a byte of the log where the value `v` (a pointer) lies.
/// What sled keeps for exchange `seq` (a pointer into the log and its time, in this layout).
fn valore_in_sled(s: &SledStore, seq: u64) -> sled::IVec {
    s.m()
        .unwrap()
        .exchanges
        .get(seq.to_be_bytes())
        .unwrap()
        .expect("the exchange is in sled")
}

fn guasta_nel_registro(p: &std::path::Path, v: &[u8]) {
    use std::os::unix::fs::FileExt;
    let (q, _) = registro::Puntatore::di(v).expect("a pointer");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(p.join(registro::DIR).join(format!("{:08}.log", q.seg)))
        .unwrap();
    let at = q.off + u64::from(q.len) / 2;
    let mut b = [0u8];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
}

#[tokio::test]
async fn records_are_kept_in_the_log_and_those_of_earlier_layouts_still_read() {
    let p = tmp("pezzi");
    let s = SledStore::open(&p).unwrap();
    // Lengths on, around and off the old piece size, and empty.
    for (seq, (lr, ls)) in [
        (1u64, (3 * PEZZO, 0)),
        (2, (PEZZO + 1, PEZZO - 1)),
        (3, (0, 5)),
        (4, (PEZZO / 2, PEZZO / 2)),
        (5, (PEZZO, 1)),
    ] {
        let mut e = ex(seq, &format!("P{seq}"));
        e.request = casuali(lr, seq);
        e.response = casuali(ls, seq + 100);
        s.put_exchange(&e).await.unwrap();
        assert_eq!(s.exchange(seq).await.unwrap().unwrap(), e, "seq {seq}");
        // sled keeps where the record lies, and its time; nothing in pieces.
        let v = valore_in_sled(&s, seq);
        assert!(v.len() < 48, "seq {seq}: {} bytes in sled", v.len());
        assert_eq!(codec::ricevuto_di(&v).unwrap(), e.received_ms());
        assert_eq!(s.m().unwrap().raw.len(), 0);
    }
    // A record written whole by an earlier version still reads.
    let mut old = ex(9, "OLD");
    old.request = b"<req/>".to_vec();
    old.response = b"<resp/>".to_vec();
    let meta = serde_json::to_vec(&old).unwrap();
    let mut v = (meta.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&meta);
    v.extend_from_slice(&(old.request.len() as u32).to_le_bytes());
    v.extend_from_slice(&old.request);
    v.extend_from_slice(&old.response);
    s.m()
        .unwrap()
        .exchanges
        .insert(9u64.to_be_bytes(), v)
        .unwrap();
    assert_eq!(s.exchange(9).await.unwrap().unwrap(), old);
    // And one whose messages an earlier version kept in pieces, not compressed.
    let mut old = ex(10, "OLD2");
    old.request = casuali(PEZZO + 10, 7);
    old.response = b"<resp/>".to_vec();
    let meta = serde_json::to_vec(&old).unwrap();
    let mut v = (meta.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(&meta);
    v.extend_from_slice(&u32::MAX.to_le_bytes());
    v.extend_from_slice(&(old.request.len() as u64).to_le_bytes());
    v.extend_from_slice(&(old.response.len() as u64).to_le_bytes());
    let m = s.m().unwrap();
    for (parte, msg) in [(0u8, &old.request), (1, &old.response)] {
        for (n, pezzo) in msg.chunks(PEZZO).enumerate() {
            m.raw
                .insert(chiave_pezzo(10, parte, n as u32), pezzo)
                .unwrap();
        }
    }
    m.exchanges.insert(10u64.to_be_bytes(), v).unwrap();
    assert_eq!(s.exchange(10).await.unwrap().unwrap(), old);
    // A missing piece is named, not silently shortened.
    m.raw.remove(chiave_pezzo(10, 0, 1)).unwrap();
    assert!(matches!(s.exchange(10).await, Err(StoreError::Corrupt(_))));
    m.exchanges.remove(10u64.to_be_bytes()).unwrap();
    // The record is compressed in the log.
    let mut xml = ex(11, "XML");
    xml.request = "<cl:Candidatura>&lt;cl:nome&gt;Maria&lt;/cl:nome&gt;</cl:Candidatura>"
        .repeat(2_000)
        .into_bytes();
    s.put_exchange(&xml).await.unwrap();
    assert_eq!(s.exchange(11).await.unwrap().unwrap(), xml);
    let v = m.exchanges.get(11u64.to_be_bytes()).unwrap().unwrap();
    let (q, _) = registro::Puntatore::di(&v).unwrap();
    assert!(q.len < 4_000, "{} bytes for {}", q.len, xml.request.len());
    // The same after a reopen, and a changed byte in the log is named, not read as it is.
    drop(m);
    drop(s);
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(s.exchange(11).await.unwrap().unwrap(), xml);
    assert!(s.check().await.unwrap().ok());
    let v = valore_in_sled(&s, 2);
    guasta_nel_registro(&p, &v);
    assert!(matches!(s.exchange(2).await, Err(StoreError::Corrupt(_))));
    let c = s.check().await.unwrap();
    assert_eq!(c.problems.len(), 1, "{:?}", c.problems);
    assert!(c.problems[0].contains("CRC"), "{:?}", c.problems);
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn claims_survive_restart_and_inflight_is_dropped() {
    let p = tmp("dup");
    {
        let s = SledStore::open(&p).unwrap();
        assert_eq!(s.claim("X", 1, None).await.unwrap(), Claim::New);
        s.settle("X", 7).await.unwrap();
        s.count_repeat("X").await.unwrap();
        assert_eq!(s.claim("Y", 3, None).await.unwrap(), Claim::New); // left in flight
        s.flush().await.unwrap();
    }
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    match s.claim("X", 4, None).await.unwrap() {
        Claim::Duplicate(d) => assert_eq!((d.seq, d.repeats), (7, 1)),
        c => panic!("{c:?}"),
    }
    assert_eq!(s.claim("Y", 5, None).await.unwrap(), Claim::New);
    // Claims in flight are in memory, and leave it once settled with their exchange; a
    // repeat counted while in flight is written with the settling.
    let in_volo = || s.m().unwrap().in_volo.lock().unwrap().len();
    assert_eq!(in_volo(), 1);
    assert!(!s
        .m()
        .unwrap()
        .dup
        .contains_key(codec::chiave_id("Y"))
        .unwrap());
    s.count_repeat("Y").await.unwrap();
    s.commit_exchange(&ex(8, "Y"), Some("Y")).await.unwrap();
    assert_eq!(in_volo(), 0);
    match s.claim("Y", 6, None).await.unwrap() {
        Claim::Duplicate(d) => assert_eq!((d.seq, d.first_ms, d.repeats), (8, 5, 1)),
        c => panic!("{c:?}"),
    }
    assert_eq!(s.claim("Z", 6, None).await.unwrap(), Claim::New);
    s.release("Z").await.unwrap();
    assert_eq!(in_volo(), 0);
    assert_eq!(s.claim("Z", 7, None).await.unwrap(), Claim::New);
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn a_second_opener_is_told_the_store_is_locked() {
    let p = tmp("lock");
    let s = SledStore::open(&p).unwrap();
    assert!(matches!(
        SledStore::open(&p),
        Err(StoreError::Locked { .. })
    ));
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn large_moduli_are_kept_in_the_log_and_those_in_pieces_still_read() {
    use crate::store::care::PurgeLimits;
    let dir = tmp("moduli-pezzi");
    let m = |xml: String| StoredModulo {
        xml,
        ..candidatura("BIG", StatoModulo::Attivo)
    };
    let purga = |s: &SledStore| {
        s.m()
            .unwrap()
            .purga(&PurgeLimits {
                exchanges_before_ms: None,
                dup_before_ms: None,
                expired_before_ms: 0,
            })
            .unwrap()
            .moduli_pieces
    };
    let chiave = codec::chiave_modulo("candidatura", "BIG");
    let s = SledStore::open(&dir).unwrap();
    // Text that does not compress.
    let testo = |n: usize, seme: u64| -> String {
        casuali(n, seme)
            .into_iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect()
    };
    let v1 = m(testo(100_000, 1));
    s.apply(vec![Write::Modulo(v1.clone())]).await.unwrap();
    assert_eq!(s.m().unwrap().moduli_pezzi.len(), 0);
    let valore = s.m().unwrap().moduli.get(&chiave).unwrap().unwrap();
    assert!(registro::Puntatore::di(&valore).is_some(), "a pointer");
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap().unwrap(),
        v1
    );
    assert_eq!(s.moduli(Tipo::Candidatura).await.unwrap(), vec![v1.clone()]);
    assert!(s.has_modulo(Tipo::Candidatura, "BIG").await.unwrap());
    // A modulo an earlier version kept in pieces still reads, and its pieces go once it is
    // written again.
    let v0 = m(testo(30_000, 3));
    let tutto = codec::comprimi(&codec::codifica_modulo(&mut v0.clone()));
    let versione = 77u64;
    let mut n = 0;
    for (i, pezzo) in tutto.chunks(PEZZO).enumerate() {
        s.m()
            .unwrap()
            .moduli_pezzi
            .insert(
                codec::chiave_pezzo_modulo(&chiave, versione, i as u32),
                pezzo,
            )
            .unwrap();
        n += 1;
    }
    let mut segno = codec::MODULO_A_PEZZI.to_vec();
    segno.extend_from_slice(&versione.to_be_bytes());
    segno.extend_from_slice(&(tutto.len() as u64).to_be_bytes());
    s.m().unwrap().moduli.insert(&chiave, segno).unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap().unwrap(),
        v0
    );
    assert_eq!(purga(&s), 0, "the live version's pieces stay");
    let v2 = m(testo(110_000, 2));
    s.apply(vec![Write::Modulo(v2.clone()), Write::ForwardDone(1)])
        .await
        .unwrap();
    assert_eq!(purga(&s), n);
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap().unwrap(),
        v2
    );
    let c = s.check().await.unwrap();
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap().unwrap(),
        v2
    );
    assert!(
        s.has_modulo(Tipo::Candidatura, "BIG").await.unwrap(),
        "indexed at open"
    );
    // A changed byte in the log is named.
    let valore = s.m().unwrap().moduli.get(&chiave).unwrap().unwrap();
    guasta_nel_registro(&dir, &valore);
    assert!(matches!(
        s.modulo(Tipo::Candidatura, "BIG").await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(!s.check().await.unwrap().problems.is_empty());
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `n` exchanges received in 2020 (past any retention), seq 1 to `n`, ids `PREFISSO0`…, with
/// requests of 150 KB that compress to about 94 KB each: several of the tests' 1 MiB segments.
async fn scambi_del_2020(s: &SledStore, n: u64, prefisso: &str) {
    let testo: Vec<u8> = casuali(150_000, 9)
        .into_iter()
        .map(|b| b'a' + b % 26)
        .collect();
    for i in 0..n {
        let mut e = ex(i + 1, &format!("{prefisso}{i}"));
        e.received_at = quando("2020-01-01T00:00:00.000+00:00");
        e.request = testo.clone();
        e.request[0] = (i % 256) as u8;
        s.put_exchange(&e).await.unwrap();
    }
}

/// The log's segments: a purge removes those nothing points into any more, wholly before the
/// checkpoint; the rest, and the one being written, stay.
#[tokio::test]
async fn the_purge_removes_the_segments_of_the_log_nothing_points_into() {
    use crate::store::care::PurgeLimits;
    let dir = tmp("segmenti");
    let s = SledStore::open(&dir).unwrap();
    scambi_del_2020(&s, 30, "S").await;
    let modulo = candidatura("RESTA", StatoModulo::Attivo);
    s.apply(vec![Write::Modulo(modulo.clone())]).await.unwrap();
    s.close().await.unwrap();
    let segmenti = || -> Vec<u32> {
        s.m()
            .unwrap()
            .segmenti
            .elenco()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let prima = segmenti();
    assert!(prima.len() >= 3, "{prima:?}");
    // What must stay: the segment of the modulo, and those from the checkpoint on.
    let chiave = codec::chiave_modulo("candidatura", "RESTA");
    let v = s.m().unwrap().moduli.get(&chiave).unwrap().unwrap();
    let del_modulo = registro::Puntatore::di(&v).unwrap().0.seg;
    let da = registro::Posizione::di(&s.m().unwrap().cura.meta.get(registro::DA).unwrap().unwrap())
        .unwrap();
    let restano: Vec<u32> = prima
        .iter()
        .copied()
        .filter(|n| *n == del_modulo || *n >= da.seg)
        .collect();
    let purga = |before: Option<i64>| {
        s.m()
            .unwrap()
            .purga(&PurgeLimits {
                exchanges_before_ms: before,
                dup_before_ms: None,
                expired_before_ms: 0,
            })
            .unwrap()
    };
    // Nothing purged: no segment is looked for, none removed.
    assert_eq!(purga(None).log_segments, 0);
    assert_eq!(segmenti(), prima);
    // The exchanges go, and the segments only they pointed into with them.
    let r = purga(Some(
        quando("2021-01-01T00:00:00.000+00:00").timestamp_millis(),
    ));
    assert_eq!(r.exchanges, 30);
    assert_eq!(r.log_segments as usize, prima.len() - restano.len());
    assert_eq!(segmenti(), restano);
    assert_eq!(
        s.modulo(Tipo::Candidatura, "RESTA").await.unwrap().unwrap(),
        modulo
    );
    assert!(s.check().await.unwrap().ok());
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "RESTA").await.unwrap().unwrap(),
        modulo
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_summaries_are_rebuilt_at_open_as_they_were() {
    let dir = tmp("indice");
    let s = SledStore::open(&dir).unwrap();
    let mut a = candidatura("A", StatoModulo::Attivo);
    a.scheda = None;
    s.apply(vec![
        Write::Modulo(a),
        Write::Modulo(candidatura("B", StatoModulo::Attivo)),
        Write::Modulo(candidatura("C", StatoModulo::Chiuso)),
    ])
    .await
    .unwrap();
    let prima = tutti(&s).await;
    assert_eq!(prima.len(), 3);
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        tutti(&s).await,
        prima,
        "the same summaries, rebuilt from the records"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn summaries_are_written_with_their_moduli_made_once_for_an_earlier_store_and_checked() {
    let dir = tmp("sommari");
    let s = SledStore::open(&dir).unwrap();
    let mut messaggio = candidatura("M", StatoModulo::Attivo);
    messaggio.kind = Tipo::Messaggio;
    s.apply(vec![
        Write::Modulo(candidatura("A", StatoModulo::Attivo)),
        Write::Modulo(candidatura("B", StatoModulo::Chiuso)),
        Write::Modulo(messaggio),
    ])
    .await
    .unwrap();
    let prima = tutti(&s).await;
    assert_eq!(prima.len(), 2);
    let m = s.m().unwrap();
    // One summary per candidatura beside its pointer, none for the messaggio, each what the
    // index holds; the summaries' tree is for moduli of earlier versions.
    let accanto = |k: &[u8]| {
        let v = m.moduli.get(k).unwrap().unwrap();
        registro::Puntatore::di(&v).unwrap().1.to_vec()
    };
    assert_eq!(m.sommari.len(), 0);
    let a = accanto(b"candidatura/A");
    assert_eq!(codec::decodifica_sommario(&a).unwrap(), prima[0]);
    assert!(accanto(b"messaggio/M").is_empty());
    assert!(s.check().await.unwrap().problems.is_empty());
    // The same after a reopen.
    drop(m);
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(tutti(&s).await, prima);
    let m = s.m().unwrap();

    // A store of before: moduli kept whole in sled, no summaries and no flag. The open
    // writes them, once.
    for codice in ["A", "B"] {
        let k = codec::chiave_modulo("candidatura", codice);
        let mut r = s.modulo(Tipo::Candidatura, codice).await.unwrap().unwrap();
        m.moduli
            .insert(&k, codec::comprimi(&codec::codifica_modulo(&mut r)))
            .unwrap();
    }
    m.sommari.clear().unwrap();
    m.cura.meta.remove(care::SOMMARI).unwrap();
    s.flush().await.unwrap();
    drop(m);
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(tutti(&s).await, prima);
    let m = s.m().unwrap();
    assert_eq!(m.sommari.len(), 2);
    assert!(m.cura.meta.contains_key(care::SOMMARI).unwrap());
    assert!(s.check().await.unwrap().problems.is_empty());

    // Read back from the summaries: a change to one shows at the next open, and the check
    // says which modulo's summary is wrong or missing.
    let mut chiuso = codec::decodifica_sommario(&a).unwrap();
    chiuso.stato = StatoModulo::Scaduto;
    m.sommari
        .insert(b"candidatura/A", codec::codifica_sommario(&chiuso))
        .unwrap();
    m.sommari.remove(b"candidatura/B").unwrap();
    s.flush().await.unwrap();
    drop(m);
    drop(s);
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(tutti(&s).await, vec![chiuso]);
    let problemi = s.check().await.unwrap().problems;
    assert_eq!(problemi.len(), 2, "{problemi:?}");
    assert!(problemi[0].contains("candidatura/A") && problemi[0].contains("differs"));
    assert!(problemi[1].contains("candidatura/B") && problemi[1].contains("no summary"));
    // Written again, a modulo of before leaves the summaries' tree for its pointer's side.
    s.apply(vec![Write::Modulo(candidatura("A", StatoModulo::Attivo))])
        .await
        .unwrap();
    let m = s.m().unwrap();
    assert!(!m.sommari.contains_key(b"candidatura/A").unwrap());
    assert_eq!(
        codec::decodifica_sommario(
            registro::Puntatore::di(&m.moduli.get(b"candidatura/A").unwrap().unwrap())
                .unwrap()
                .1
        )
        .unwrap(),
        prima[0]
    );
    drop(m);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_modulo_keeps_its_document_beside_its_json_and_earlier_records_still_read() {
    use crate::modulo::scheda::Json;
    let dir = tmp("modulo-v2");
    let s = SledStore::open(&dir).unwrap();
    let mut a = candidatura("A", StatoModulo::Attivo);
    a.xml = "<cl:Candidatura>\"virgolette\" e a capo\n, àccenti</cl:Candidatura>".into();
    // The scheda's objects as it writes them: their text kept as it is, not as JSON in JSON.
    let pubblico = r#"{"mansioni":"Cuoco \"capo\"\n\\ à €","lista":["a","b"],"n":{"k":true}}"#;
    let scheda = a.scheda.as_mut().unwrap();
    scheda.pubblico = Some(Json::dal_testo(pubblico));
    scheda.contatto = None;
    s.apply(vec![Write::Modulo(a.clone())]).await.unwrap();
    let m = s.m().unwrap();
    let grezzo = m.moduli.get(b"candidatura/A").unwrap().unwrap();
    let grezzo = m.dal_registro(&grezzo).unwrap();
    let chiaro = codec::svela(&grezzo).unwrap();
    assert!(chiaro.starts_with(&codec::MODULO_V3));
    assert!(
        chiaro.ends_with(a.xml.as_bytes()),
        "the document as it is, not escaped"
    );
    let mut oggetto = (pubblico.len() as u32 + 1).to_le_bytes().to_vec();
    oggetto.extend_from_slice(pubblico.as_bytes());
    oggetto.extend_from_slice(&0u32.to_le_bytes());
    assert!(
        memchr::memmem::find(&chiaro, &oggetto).is_some(),
        "the object as its text, then no contatto"
    );
    let letto = s.modulo(Tipo::Candidatura, "A").await.unwrap().unwrap();
    assert_eq!(
        letto
            .scheda
            .as_ref()
            .unwrap()
            .pubblico
            .as_ref()
            .unwrap()
            .testo(),
        pubblico
    );
    assert_eq!(letto, a);

    // The layout before (the objects inside the JSON) still reads.
    let mut d = a.clone();
    d.code = "D".into();
    let json = serde_json::to_vec(&StoredModulo {
        xml: String::new(),
        ..d.clone()
    })
    .unwrap();
    let mut v2 = codec::MODULO_V2.to_vec();
    v2.extend_from_slice(&(json.len() as u32).to_le_bytes());
    v2.extend_from_slice(&json);
    v2.extend_from_slice(d.xml.as_bytes());
    assert_eq!(codec::decodifica_modulo(&v2).unwrap(), d);

    // Records of earlier versions: JSON with the document in it, compressed or not.
    let mut b = candidatura("B", StatoModulo::Attivo);
    b.xml = "<b/>".into();
    let mut c = candidatura("C", StatoModulo::Chiuso);
    c.xml = "<c/>".into();
    m.moduli
        .insert(b"candidatura/B", codec::comprimi(&codec::codifica(&b)))
        .unwrap();
    m.moduli
        .insert(b"candidatura/C", codec::codifica(&c))
        .unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "B").await.unwrap(),
        Some(b.clone())
    );
    assert_eq!(
        s.modulo(Tipo::Candidatura, "C").await.unwrap(),
        Some(c.clone())
    );
    assert_eq!(s.moduli(Tipo::Candidatura).await.unwrap(), vec![a, b, c]);

    // Cut short, in the header, the JSON, the objects or the document: refused as corrupt.
    let negli_oggetti = memchr::memmem::find(&chiaro, &oggetto).unwrap() + 6;
    for n in [4, 7, 20, negli_oggetti, chiaro.len() - 1] {
        let mut corto = chiaro[..n].to_vec();
        if n == chiaro.len() - 1 {
            // A document cut inside a character is not UTF-8.
            corto.truncate(chiaro.len() - "</cl:Candidatura>".len() - 1);
            corto.push(0xc3);
        }
        assert!(codec::decodifica_modulo(&corto).is_err(), "{n}");
    }
    drop(m);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn id_blocks_never_overlap_across_reopen() {
    let p = tmp("ids");
    let c = |m: &'static str| crate::store::Contatore {
        cod_amm: "A",
        cod_pdd: "ASPCoopIT",
        minuto: m,
        nodo: None,
    };
    let first = {
        let s = SledStore::open(&p).unwrap();
        assert_eq!(
            s.reserve_ids(c("2024-01-01_10:00"), 100, 9_999_999)
                .await
                .unwrap(),
            1
        );
        s.reserve_ids(c("2024-01-01_10:00"), 100, 9_999_999)
            .await
            .unwrap()
    };
    assert_eq!(first, 101);
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        s.reserve_ids(c("2024-01-01_10:00"), 100, 9_999_999)
            .await
            .unwrap(),
        201
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn a_store_of_an_earlier_version_gets_its_time_index_at_open() {
    let p = tmp("indice-tempi");
    {
        let s = SledStore::open(&p).unwrap();
        for (seq, t) in [
            (1, "2026-11-01T10:00:00.000+01:00"),
            (2, "2026-11-02T10:00:00.000+01:00"),
        ] {
            let mut e = ex(seq, &format!("T{seq}"));
            e.received_at = quando(t);
            s.put_exchange(&e).await.unwrap();
        }
        // As a store written before the index existed.
        s.m().unwrap().received.clear().unwrap();
        s.m().unwrap().cura.meta.remove(b"indice_ricevuti").unwrap();
        s.flush().await.unwrap();
    }
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    let dal = quando("2026-11-02T00:00:00.000+01:00").timestamp_millis();
    let v = s.exchanges_between(Some(dal), None).await.unwrap();
    assert_eq!(v.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);
    assert!(s.check().await.unwrap().ok());
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn after_a_failed_write_the_store_reopens_itself_with_what_was_durable() {
    let p = tmp("ripresa");
    let s = SledStore::open(&p).unwrap();
    s.apply(vec![Write::Modulo(candidatura(
        "DUREVOLE",
        StatoModulo::Attivo,
    ))])
    .await
    .unwrap();
    s.flush().await.unwrap();
    // An I/O failure as a full disk gives it: the engine goes out of service and is reopened.
    let e = s.esito::<()>(Err(StoreError::io(
        "flush",
        std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"),
    )));
    assert!(matches!(e, Err(StoreError::StorageFull(_))));
    let t = std::time::Instant::now();
    while s.riaperture() == 0 {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "not reopened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(s.avviso(), None, "in service again");
    // What was durable is there, the index rebuilt; the store takes writes again.
    assert!(s.has_modulo(Tipo::Candidatura, "DUREVOLE").await.unwrap());
    s.apply(vec![Write::Modulo(candidatura(
        "DOPO",
        StatoModulo::Attivo,
    ))])
    .await
    .unwrap();
    s.flush().await.unwrap();
    assert!(s.modulo(Tipo::Candidatura, "DOPO").await.unwrap().is_some());
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

/// A new store's log has segments of [`SEGMENTO`]; a store made with sled's old 512 KiB keeps
/// them (sled would refuse to open it with others), and so does its backup.
#[tokio::test]
async fn a_new_store_has_large_segments_and_an_old_one_keeps_its_own() {
    use crate::clock::SystemClock;
    let nuovo = tmp("segmenti-nuovi");
    drop(SledStore::open(&nuovo).unwrap());
    assert_eq!(segmento(&nuovo), Some(SEGMENTO));

    let vecchio = tmp("segmenti-vecchi");
    let come_prima = Opzioni {
        segmento: 512 * 1024,
        ..Opzioni::default()
    };
    let s = SledStore::open_waiting_with(&vecchio, std::time::Duration::ZERO, come_prima).unwrap();
    s.commit_exchange(&ex(1, "A1"), None).await.unwrap();
    drop(s);
    let s = SledStore::open_waiting(&vecchio, std::time::Duration::from_secs(2)).unwrap();
    assert_eq!(segmento(&vecchio), Some(512 * 1024));
    assert_eq!(
        s.exchange(1).await.unwrap().unwrap().request_id.as_deref(),
        Some("A1")
    );
    let copia = tmp("segmenti-copia");
    s.backup(&copia, &SystemClock).await.unwrap();
    assert_eq!(segmento(&copia), Some(512 * 1024));
    drop(s);
    for p in [nuovo, vecchio, copia] {
        let _ = std::fs::remove_dir_all(&p);
    }
}

/// A new store is compressed only when asked; a store keeps the choice it was made with
/// whatever the options of a later open, and so does its backup.
#[tokio::test]
async fn compression_is_chosen_when_the_store_is_made_and_kept_by_its_backup() {
    use crate::clock::SystemClock;
    let nuovo = tmp("non-compresso");
    drop(SledStore::open(&nuovo).unwrap());
    assert_eq!(compresso(&nuovo), Some(false));

    let p = tmp("compresso");
    assert_eq!(compresso(&p), None);
    let con = Opzioni {
        comprimi: true,
        ..Opzioni::default()
    };
    let s = SledStore::open_waiting_with(&p, std::time::Duration::ZERO, con).unwrap();
    let mut e = ex(1, "A1");
    e.request = "<richiesta>".repeat(2_000).into_bytes();
    s.commit_exchange(&e, None).await.unwrap();
    drop(s);
    assert_eq!(compresso(&p), Some(true));
    // Opened with the default (no compression): still the compressed store, all there.
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(compresso(&p), Some(true));
    assert_eq!(s.exchange(1).await.unwrap().unwrap().request, e.request);

    let copia = tmp("copia-compressa");
    s.backup(&copia, &SystemClock).await.unwrap();
    assert_eq!(compresso(&copia), Some(true));
    let c = SledStore::open(&copia).unwrap();
    assert_eq!(c.exchange(1).await.unwrap().unwrap().request, e.request);
    assert_eq!(segmento(&copia), segmento(&p));
    for p in [nuovo, p, copia] {
        let _ = std::fs::remove_dir_all(p);
    }
}

#[tokio::test]
async fn ids_and_claims_of_an_earlier_layout_are_rekeyed_by_minute_at_open() {
    let p = tmp("chiavi-id");
    let id = |n: u32, minuto: &str| format!("EMILIA_EMILIASPCoopIT_{n:07}_2026-11-{minuto}");
    {
        let s = SledStore::open(&p).unwrap();
        for (seq, n, minuto) in [(1, 1, "27_08:00"), (2, 1, "27_08:01"), (3, 2, "26_23:59")] {
            let i = id(n, minuto);
            assert_eq!(s.claim(&i, 1, None).await.unwrap(), Claim::New);
            s.commit_exchange_with(&ex(seq, &i), Some(&i), vec![])
                .await
                .unwrap();
        }
        assert_eq!(s.claim("fuori-forma", 1, None).await.unwrap(), Claim::New);
        s.commit_exchange_with(&ex(4, "fuori-forma"), Some("fuori-forma"), vec![])
            .await
            .unwrap();
        // As a store written before: the entries under the id itself (the first layout) or
        // under the minute then the whole id (the second), but the first of each tree, as a
        // rekeying cut short by a crash leaves it.
        let m = s.m().unwrap();
        for t in [&m.ids, &m.dup] {
            let tutte: Vec<_> = t.iter().map(|kv| kv.unwrap()).collect();
            assert!(tutte.len() >= 4);
            for (n, (k, v)) in tutte.into_iter().enumerate().skip(1) {
                let id = codec::id_della_chiave(&k).unwrap().into_owned();
                let vecchia = if n % 2 == 0 && k[0] != b'~' {
                    [&k[..16], &id[..]].concat()
                } else {
                    id
                };
                t.remove(&k).unwrap();
                t.insert(vecchia, v).unwrap();
            }
        }
        m.cura.meta.remove(care::CHIAVI_ID).unwrap();
        s.flush().await.unwrap();
    }
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    for (seq, i) in [
        (1, id(1, "27_08:00")),
        (2, id(1, "27_08:01")),
        (3, id(2, "26_23:59")),
        (4, "fuori-forma".to_string()),
    ] {
        assert_eq!(s.exchange_by_id(&i).await.unwrap().unwrap().seq, seq, "{i}");
        assert_eq!(
            s.exchange_by_id(&format!("R{i}"))
                .await
                .unwrap()
                .unwrap()
                .seq,
            seq
        );
        match s.claim(&i, 2, None).await.unwrap() {
            Claim::Duplicate(d) => assert_eq!(d.seq, seq),
            c => panic!("{i}: {c:?}"),
        }
    }
    let m = s.m().unwrap();
    for t in [&m.ids, &m.dup] {
        assert!(t
            .iter()
            .map(|kv| kv.unwrap())
            .all(|(k, _)| codec::id_della_chiave(&k).is_some()));
    }
    // The oldest minute first.
    let (primo, _) = m.dup.first().unwrap().unwrap();
    assert_eq!(
        codec::id_della_chiave(&primo).as_deref(),
        Some(id(2, "26_23:59").as_bytes())
    );
    let report = s.check().await.unwrap();
    assert!(report.ok(), "{report:?}");
    drop(m);
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

#[tokio::test]
async fn the_duplicate_filter_is_purged_by_minute_up_to_the_young_entries() {
    let p = tmp("purga-dup");
    let s = SledStore::open(&p).unwrap();
    let ms = |t: &str| quando(t).timestamp_millis();
    let ids = [
        // Old, first seen long ago: goes.
        (
            "A_A_0000001_2026-11-01_10:00",
            ms("2026-11-01T10:00:05+00:00"),
        ),
        // Old minute, but first seen inside the window (a late busta): stays.
        (
            "A_A_0000002_2026-11-01_10:00",
            ms("2026-11-20T10:00:00+00:00"),
        ),
        // Not of the standard's form, first seen long ago: goes.
        ("altro", ms("2026-11-01T10:00:00+00:00")),
        // Young: stays.
        (
            "A_A_0000001_2026-11-20_10:00",
            ms("2026-11-20T10:00:05+00:00"),
        ),
        // A young minute first seen long ago (a sender's clock weeks ahead): the walk stops
        // before it, so it stays until a later purge.
        (
            "A_A_0000003_2026-11-25_10:00",
            ms("2026-11-01T10:00:00+00:00"),
        ),
    ];
    for (n, (id, first)) in ids.iter().enumerate() {
        assert_eq!(s.claim(id, *first, None).await.unwrap(), Claim::New);
        s.settle(id, n as u64 + 1).await.unwrap();
    }
    let r = s
        .purge(&cura::PurgeLimits {
            exchanges_before_ms: None,
            dup_before_ms: Some(ms("2026-11-10T00:00:00+00:00")),
            expired_before_ms: i64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(r.dup, 2, "{r:?}");
    let resta = |id: &str| {
        s.m()
            .unwrap()
            .dup
            .contains_key(codec::chiave_id(id))
            .unwrap()
    };
    assert_eq!(
        ids.map(|(id, _)| resta(id)),
        [false, true, false, true, true]
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

/// Where the checkpoint of the store's log stands, and the log's segments.
fn checkpoint_e_segmenti(s: &SledStore) -> (registro::Posizione, Vec<(u32, u64)>) {
    let m = s.m().unwrap();
    let da = registro::Posizione::di(&m.cura.meta.get(registro::DA).unwrap().unwrap()).unwrap();
    (da, m.segmenti.elenco().unwrap())
}

/// A crash after the log's sync and before sled had the entry (or all of it): the next open
/// applies the log from the checkpoint, whole entries only, and the store is as if the write
/// had been applied once; a torn entry after it (a write cut short, never acknowledged) is
/// left out, and the log goes on in a new segment.
#[tokio::test]
async fn the_log_is_applied_again_at_open_up_to_a_torn_entry() {
    let p = tmp("journal-riapri");
    let s = SledStore::open(&p).unwrap();
    // The claim is made before the exchange, as the gateway does.
    assert!(matches!(
        s.claim("2026-12-07_10:00EMILIA_1", 1, None).await.unwrap(),
        Claim::New
    ));
    let mut uno = ex(1, "2026-12-07_10:00EMILIA_1");
    uno.request = casuali(3 * PEZZO, 5);
    let voce = |s: &SledStore, e: &Exchange, codice: &str| {
        let mut batch = [
            Write::Modulo(candidatura(codice, StatoModulo::Attivo)),
            Write::Forward(Forward {
                seq: e.seq,
                creato: e.received_at,
                destinatario: "SPC/EMILIA".into(),
                servizio: "S".into(),
                azione: "A".into(),
                id: format!("F{}", e.seq),
                ora: e.received_at,
                corpo: "<invioCandidatura/>".into(),
                kind: Tipo::Candidatura,
                codice: codice.into(),
                invio: true,
                tentativi: 0,
                prossimo_ms: 0,
                stato: crate::store::ForwardState::Pending,
                errore: None,
                causa: None,
            }),
        ];
        s.m()
            .unwrap()
            .prepara(
                &mut batch,
                Some((e, Some(e.request_id.as_deref().unwrap()))),
            )
            .unwrap()
            .byte
    };
    let prima = voce(&s, &uno, "DAL-GIORNALE");
    let seconda = voce(&s, &ex(2, "2026-12-07_10:00EMILIA_2"), "STRAPPATA");
    s.close().await.unwrap();
    let (da, segmenti) = checkpoint_e_segmenti(&s);
    assert_eq!(segmenti.last(), Some(&(da.seg, da.off)), "a clean close");
    drop(s);
    // The log of a process that died after its sync: the first entry whole (twice, as a crash
    // during a checkpoint would leave it), the second cut short.
    let mut coda = prima.clone();
    coda.extend_from_slice(&prima);
    coda.extend_from_slice(&seconda[..seconda.len() - 3]);
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(p.join(registro::DIR).join(format!("{:08}.log", da.seg)))
            .unwrap();
        f.write_all(&coda).unwrap();
    }
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    let (dopo, segmenti) = checkpoint_e_segmenti(&s);
    assert_eq!(
        dopo,
        registro::Posizione {
            seg: da.seg + 1,
            off: 0
        },
        "a new segment, past what was torn"
    );
    assert_eq!(segmenti.len(), 2);
    let e = s.exchange(1).await.unwrap().expect("the log's exchange");
    assert_eq!(e.request, uno.request);
    assert_eq!(
        s.exchange_by_id("2026-12-07_10:00EMILIA_1")
            .await
            .unwrap()
            .map(|e| e.seq),
        Some(1)
    );
    assert!(matches!(
        s.claim("2026-12-07_10:00EMILIA_1", 2, None).await.unwrap(),
        Claim::Duplicate(d) if d.seq == 1
    ));
    assert!(s
        .has_modulo(Tipo::Candidatura, "DAL-GIORNALE")
        .await
        .unwrap());
    assert_eq!(tutti(&s).await.len(), 1, "the summary with its modulo");
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    assert_eq!(s.exchanges_between(None, None).await.unwrap().len(), 1);
    // The torn entry left nothing.
    assert!(s.exchange(2).await.unwrap().is_none());
    assert!(!s.has_modulo(Tipo::Candidatura, "STRAPPATA").await.unwrap());
    assert!(s.check().await.unwrap().ok());
    // A write is in the log when it returns; a flush leaves the checkpoint where it was (it
    // only waits for the writes in flight), a close makes sled durable and moves it to the end.
    s.put_partner(&Soggetto::new("SPC", "LAZIO")).await.unwrap();
    s.flush().await.unwrap();
    let (ora, segmenti) = checkpoint_e_segmenti(&s);
    assert_eq!(ora, dopo);
    assert!(segmenti.last().unwrap().1 > 0);
    s.close().await.unwrap();
    let (ora, segmenti) = checkpoint_e_segmenti(&s);
    assert_eq!(segmenti.last(), Some(&(ora.seg, ora.off)));
    drop(s);
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(s.partners().await.unwrap().len(), 1);
    // After a clean close the log goes on where it was.
    assert_eq!(checkpoint_e_segmenti(&s).0, ora);
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

/// The journal file of an earlier version (emptied at each checkpoint, no values kept in it for
/// good) is applied at open, up to a torn entry, and removed.
#[tokio::test]
async fn the_journal_file_of_an_earlier_version_is_applied_and_removed() {
    let p = tmp("journal-vecchio");
    let s = SledStore::open(&p).unwrap();
    drop(s);
    let e = ex(1, "2026-12-07_10:00EMILIA_1");
    let mut modulo = candidatura("VECCHIO", StatoModulo::Attivo);
    let mut v = journal::Voce::default();
    v.put(
        albero::MODULI,
        &codec::chiave_modulo("candidatura", "VECCHIO"),
        &codec::comprimi(&codec::codifica_modulo(&mut modulo)),
    );
    v.put(
        albero::SOMMARI,
        &codec::chiave_modulo("candidatura", "VECCHIO"),
        &codec::codifica_sommario(&Sommario::di(&modulo).unwrap()),
    );
    v.scambio(1, e.received_ms(), &codec::encode_exchange(&e, None));
    v.id_se_manca(&codec::chiave_id("2026-12-07_10:00EMILIA_1"), 1);
    let v = v.chiudi();
    let mut file = v.clone();
    file.extend_from_slice(&v[..v.len() - 1]);
    std::fs::write(p.join(journal::FILE), &file).unwrap();
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert!(!p.join(journal::FILE).exists());
    assert_eq!(s.exchange(1).await.unwrap().unwrap(), e);
    assert_eq!(
        s.modulo(Tipo::Candidatura, "VECCHIO")
            .await
            .unwrap()
            .unwrap(),
        modulo
    );
    assert!(s.check().await.unwrap().ok());
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

/// An exchange that stores a modulo keeps its request without the modulo's document, which the
/// modulo's value holds: read back byte for byte, also once the modulo is written again. A small
/// document and a large one (over 64 KB, compressed without the dictionary).
#[tokio::test]
async fn a_request_is_kept_without_the_document_its_modulo_holds() {
    senza_documento(40).await;
    senza_documento(2_000).await;
}

async fn senza_documento(ripetizioni: usize) {
    let p = tmp("senza-documento");
    let s = SledStore::open(&p).unwrap();
    let mut modulo = candidatura("DOC", StatoModulo::Attivo);
    modulo.xml = format!(
        "<?xml version=\"1.0\"?>\n<cl:Candidatura a=\"1\">{}</cl:Candidatura>",
        "<cl:nome>Maria &amp; Anna</cl:nome>".repeat(ripetizioni)
    );
    let busta = |doc: &str| {
        format!(
            "<soap:Envelope><soap:Body><t:invio><t:CandidaturaXML>{}</t:CandidaturaXML></t:invio></soap:Body></soap:Envelope>",
            crate::xml::escape_text(doc)
        )
        .into_bytes()
    };
    // Sequence numbers as the store hands them out (the check holds it to them).
    for _ in 0..3 {
        s.next_seq().await.unwrap();
    }
    let mut e = ex(1, "2026-12-07_10:00EMILIA_1");
    e.request = busta(&modulo.xml);
    s.commit_exchange_with(&e, None, vec![Write::Modulo(modulo.clone())])
        .await
        .unwrap();
    let valore = valore_in_sled(&s, 1);
    let documento = registro::Puntatore::documento(&valore).expect("the modulo is named");
    let del_modulo = s
        .m()
        .unwrap()
        .moduli
        .get(b"candidatura/DOC")
        .unwrap()
        .unwrap();
    assert_eq!(
        Some(documento),
        registro::Puntatore::di(&del_modulo).map(|(p, _)| p)
    );
    assert_eq!(s.exchange(1).await.unwrap().unwrap(), e);
    // The same exchange written whole, for comparison: its record is larger by about the
    // document's compressed size.
    let mut intero = e.clone();
    intero.seq = 2;
    intero.request_id = Some("2026-12-07_10:00EMILIA_2".into());
    s.put_exchange(&intero).await.unwrap();
    let v2 = valore_in_sled(&s, 2);
    assert!(registro::Puntatore::documento(&v2).is_none());
    let lungo = |v: &[u8]| registro::Puntatore::di(v).unwrap().0.len;
    assert!(
        lungo(&valore) + 40 < lungo(&v2),
        "{} {}",
        lungo(&valore),
        lungo(&v2)
    );
    // The modulo written again: the exchange still has the document it carried.
    let mut nuovo = modulo.clone();
    nuovo.xml = "<cl:Candidatura/>".into();
    s.apply(vec![Write::Modulo(nuovo)]).await.unwrap();
    assert_eq!(s.exchange(1).await.unwrap().unwrap(), e);
    // A request that does not carry the document as this store escapes it: kept whole.
    let mut altro = ex(3, "2026-12-07_10:00EMILIA_3");
    altro.request = busta(&modulo.xml.replace('"', "'"));
    s.commit_exchange_with(&altro, None, vec![Write::Modulo(modulo.clone())])
        .await
        .unwrap();
    let v3 = valore_in_sled(&s, 3);
    assert!(registro::Puntatore::documento(&v3).is_none());
    assert_eq!(s.exchange(3).await.unwrap().unwrap(), altro);
    let c = s.check().await.unwrap();
    assert!(c.ok(), "{:?}", c.problems);
    drop(s);
    let s = SledStore::open_waiting(&p, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(s.exchange(1).await.unwrap().unwrap(), e);
    drop(s);
    let _ = std::fs::remove_dir_all(&p);
}

/// A modulo outlives the exchanges around it in the log (a candidatura stays, deactivated, after
/// they are purged): the purge writes it again at the log's end, and its old segment goes.
#[tokio::test]
async fn the_purge_moves_the_moduli_out_of_segments_mostly_dead() {
    use crate::store::care::PurgeLimits;
    let dir = tmp("sposta");
    let s = SledStore::open(&dir).unwrap();
    let modulo = candidatura("VIVE", StatoModulo::Attivo);
    s.apply(vec![Write::Modulo(modulo.clone())]).await.unwrap();
    scambi_del_2020(&s, 30, "M").await;
    s.close().await.unwrap();
    let chiave = codec::chiave_modulo("candidatura", "VIVE");
    let dove = |s: &SledStore| {
        let v = s.m().unwrap().moduli.get(&chiave).unwrap().unwrap();
        registro::Puntatore::di(&v).unwrap().0.seg
    };
    let segmenti = |s: &SledStore| -> Vec<u32> {
        s.m()
            .unwrap()
            .segmenti
            .elenco()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let prima = dove(&s);
    let (da, _) = checkpoint_e_segmenti(&s);
    assert!(
        prima < da.seg,
        "the modulo's segment {prima} lies before {da:?}"
    );
    let r = s
        .m()
        .unwrap()
        .purga(&PurgeLimits {
            exchanges_before_ms: Some(quando("2021-01-01T00:00:00.000+00:00").timestamp_millis()),
            dup_before_ms: None,
            expired_before_ms: 0,
        })
        .unwrap();
    assert_eq!(r.exchanges, 30);
    let dopo = dove(&s);
    assert!(dopo >= da.seg, "moved to the log's end: {prima} -> {dopo}");
    assert!(!segmenti(&s).contains(&prima), "{:?}", segmenti(&s));
    assert!(
        segmenti(&s).iter().all(|n| *n >= da.seg),
        "{:?}",
        segmenti(&s)
    );
    assert_eq!(
        s.modulo(Tipo::Candidatura, "VIVE").await.unwrap().unwrap(),
        modulo
    );
    assert!(s.check().await.unwrap().ok());
    drop(s);
    // The same after a reopen, with its summary.
    let s = SledStore::open_waiting(&dir, std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(dove(&s), dopo);
    assert_eq!(
        s.modulo(Tipo::Candidatura, "VIVE").await.unwrap().unwrap(),
        modulo
    );
    assert_eq!(tutti(&s).await.len(), 1, "its summary moved with it");
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
