//! The store contract: what every storage engine must do, written once against `dyn Store` and
//! run against each engine (`sled::…` on a fresh directory, `memory::…` in memory,
//! `postgres::…` in a schema of its own on a private PostgreSQL server the suite starts).
//!
//! What is particular to one engine (record layouts, reopening, locks) is tested beside it;
//! here only the behaviour the `Store` trait documents.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Duration, FixedOffset, NaiveDate};
use pdd::egov::diagnostico::{Diagnostico, Severita};
use pdd::modulo::intermediario::{Intermediario, TipoIntermediario};
use pdd::modulo::rapporto::Rapporto;
use pdd::modulo::Tipo;
use pdd::registry::Soggetto;
use pdd::store::care::PurgeLimits;
use pdd::store::{
    Claim, Contatore, Contatto, Criteri, Direction, Exchange, Forward, ForwardState, Outcome,
    Pagina, StatoModulo, Store, StoreError, StoredModulo, User, Write,
};

// --- fixtures ---

/// A directory of its own under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "pdd-contract-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sled store on a fresh directory; the store is dropped before its directory goes.
struct SledFixture {
    store: pdd::store::SledStore,
    _dir: TempDir,
}

fn sled_store() -> SledFixture {
    let dir = TempDir::new("sled");
    let store = pdd::store::SledStore::open(&dir.0).expect("open a fresh sled store");
    SledFixture { store, _dir: dir }
}

fn t(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).unwrap()
}

fn at_ms(ms: i64) -> DateTime<FixedOffset> {
    DateTime::from_timestamp_millis(ms).unwrap().fixed_offset()
}

const GIORNO: i64 = 86_400_000;

/// An answered incoming exchange carrying request id `id` and response id `id-R`.
fn scambio(seq: u64, id: &str, received: DateTime<FixedOffset>) -> Exchange {
    let mut e = Exchange::nuovo(seq, Direction::In, received);
    e.answered_at = Some(received + Duration::milliseconds(7));
    e.request_id = Some(id.to_string());
    e.response_id = Some(format!("{id}-R"));
    e.mittente = Some("SPC/EMILIA".into());
    e.destinatario = Some("SPC/CLICLAVORO".into());
    e.servizio = Some("ServizioCandidatura".into());
    e.azione = Some("invioCandidatura".into());
    e.profilo = Some("EGOV_IT_ServizioSincrono".into());
    e.outcome = Outcome::Ok;
    e.http_status = 200;
    e.note = Some("ok".into());
    e.peer = Some("127.0.0.1:4000".into());
    e.request = format!("<richiesta id=\"{id}\"/>").into_bytes();
    e.response = b"<risposta/>".to_vec();
    e
}

fn seqs(v: &[Exchange]) -> Vec<u64> {
    v.iter().map(|e| e.seq).collect()
}

fn modulo(kind: Tipo, code: &str, stato: StatoModulo) -> StoredModulo {
    let mut scheda = pdd::modulo::scheda::candidatura(&Default::default());
    scheda.codice = code.to_string();
    // Published fields that a summary must not carry.
    scheda.pubblico = Some(serde_json::json!({ "titolo": "cuoco" }).into());
    scheda.contatto = Some(serde_json::json!({ "tramite": "diretto", "email": "a@b.it" }).into());
    scheda.testo = "cuoco esperto".into();
    StoredModulo {
        kind,
        code: code.to_string(),
        versione: "2.0".into(),
        stato,
        received_at: t("2026-11-27T10:00:00.000+01:00"),
        updated_at: t("2026-11-27T10:00:00.000+01:00"),
        request_id: Some(format!("ID-{code}")),
        mittente: Some("SPC/EMILIA".into()),
        scadenza: NaiveDate::from_ymd_opt(2027, 1, 31),
        precedente: None,
        attuale: None,
        xml: format!("<{}>{code}</{}>", kind.radice(), kind.radice()),
        destinazioni: vec!["SPC/LAZIO".into()],
        titolare: None,
        scheda: (kind != Tipo::Messaggio).then_some(scheda),
    }
}

/// Writes one modulo.
async fn salva(s: &dyn Store, m: StoredModulo) {
    s.apply(vec![Write::Modulo(m)]).await.unwrap();
}

fn forward(seq: u64, codice: &str) -> Forward {
    Forward {
        seq,
        creato: t("2026-11-27T10:00:00.000+01:00"),
        destinatario: "SPC/LAZIO".into(),
        servizio: "ServizioCandidatura".into(),
        azione: "invioCandidatura".into(),
        id: format!("CLICLAVORO_CLICLAVOROSPCoopIT_{seq:07}"),
        ora: t("2026-11-27T10:00:00.000+01:00"),
        corpo: format!("<invioCandidatura>{codice}</invioCandidatura>"),
        kind: Tipo::Candidatura,
        codice: codice.to_string(),
        invio: true,
        tentativi: 0,
        prossimo_ms: 0,
        stato: ForwardState::Pending,
        errore: None,
        causa: Some("EMILIA_EMILIASPCoopIT_0000001".into()),
    }
}

fn eures(seq: u64, kind: Tipo, codice: &str) -> Forward {
    Forward {
        destinatario: "EURES".into(),
        id: String::new(),
        kind,
        corpo: format!("<europass>{codice}</europass>"),
        ..forward(seq, codice)
    }
}

fn contatto(codice: &str, testo: &str) -> Contatto {
    Contatto {
        codice: codice.to_string(),
        tipo: "03".into(),
        ricevuto: "2026-11-27T10:00:00.000+01:00".into(),
        kind: Tipo::Candidatura,
        riferimento: "C1".into(),
        da: serde_json::json!({ "nome": "Ditta", "email": "ditta@example.it" }),
        per: serde_json::json!({ "nome": "Lavoratore" }),
        testo: testo.to_string(),
        via: Some("SPC/LAZIO".into()),
    }
}

fn user(nome: &str, sha: &str) -> User {
    User {
        nome: nome.to_string(),
        sha256: sha.to_string(),
        creato: "2026-11-27T10:00:00+01:00".into(),
        ruolo: None,
        password: None,
    }
}

fn rapporto(qualifica: &str) -> Rapporto {
    Rapporto {
        qualifica: qualifica.to_string(),
        dal: NaiveDate::from_ymd_opt(2019, 3, 1).unwrap(),
        al: NaiveDate::from_ymd_opt(2026, 6, 30),
    }
}

fn diagnostico(ora: DateTime<FixedOffset>, messaggio: &str) -> Diagnostico {
    let mut d = Diagnostico::new(
        Severita::InfoProtocol,
        "RicezioneBuste",
        "PDD_TEST",
        messaggio,
    )
    .scambio(1, Some("ID-1"));
    d.ora = ora;
    d
}

fn contatore(minuto: &str) -> Contatore<'_> {
    Contatore {
        cod_amm: "EMILIA",
        cod_pdd: "EMILIASPCoopIT",
        minuto,
        nodo: None,
    }
}

/// The largest value an Identificatore carries (seven digits).
const CAPACITY: u32 = 9_999_999;

// --- Identificatore counters ---

async fn id_blocks_start_at_one_and_never_overlap(s: &dyn Store) {
    let c = contatore("2026-11-27_10:00");
    assert_eq!(s.reserve_ids(c, 100, CAPACITY).await.unwrap(), 1);
    assert_eq!(s.reserve_ids(c, 100, CAPACITY).await.unwrap(), 101);
    assert_eq!(s.reserve_ids(c, 1, CAPACITY).await.unwrap(), 201);
    assert_eq!(s.reserve_ids(c, 50, CAPACITY).await.unwrap(), 202);
    assert_eq!(s.reserve_ids(c, 50, CAPACITY).await.unwrap(), 252);
}

async fn id_counters_are_independent(s: &dyn Store) {
    let a = contatore("2026-11-27_10:00");
    assert_eq!(s.reserve_ids(a, 10, CAPACITY).await.unwrap(), 1);
    // Another minute, another soggetto, another porta: each starts at 1.
    let b = contatore("2026-11-27_10:01");
    assert_eq!(s.reserve_ids(b, 10, CAPACITY).await.unwrap(), 1);
    let altro = Contatore {
        cod_amm: "LAZIO",
        ..a
    };
    assert_eq!(s.reserve_ids(altro, 10, CAPACITY).await.unwrap(), 1);
    let porta = Contatore {
        cod_pdd: "EMILIAPdD2",
        ..a
    };
    assert_eq!(s.reserve_ids(porta, 10, CAPACITY).await.unwrap(), 1);
    // Each node of a cluster counts on its own.
    let nodo = Contatore {
        nodo: Some("02"),
        ..a
    };
    assert_eq!(s.reserve_ids(nodo, 10, CAPACITY).await.unwrap(), 1);
    // And none of them moved the first.
    assert_eq!(s.reserve_ids(a, 10, CAPACITY).await.unwrap(), 11);
    assert_eq!(s.reserve_ids(b, 10, CAPACITY).await.unwrap(), 11);
}

async fn id_counter_exhausted_is_typed(s: &dyn Store) {
    let c = contatore("2026-11-27_10:00");
    assert_eq!(s.reserve_ids(c, 4, 10).await.unwrap(), 1);
    assert_eq!(s.reserve_ids(c, 4, 10).await.unwrap(), 5);
    // The last block is cut at the capacity; the caller bounds it by `capacity` itself.
    assert_eq!(s.reserve_ids(c, 4, 10).await.unwrap(), 9);
    for _ in 0..2 {
        match s.reserve_ids(c, 4, 10).await {
            Err(StoreError::Exhausted(_)) => {}
            r => panic!("expected Exhausted, got {r:?}"),
        }
    }
    // Another minute is not affected.
    assert_eq!(
        s.reserve_ids(contatore("2026-11-27_10:01"), 4, 10)
            .await
            .unwrap(),
        1
    );
}

/// Runs `f` on `n` threads at once, each with a runtime of its own; their results.
fn on_threads<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (f, barrier) = (&f, &barrier);
                sc.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn id_blocks_never_overlap_under_concurrency(s: &dyn Store) {
    let c = contatore("2026-11-27_10:00");
    let firsts = on_threads(8, |_| {
        block_on(async {
            let mut v = Vec::new();
            for _ in 0..20 {
                v.push(s.reserve_ids(c, 10, CAPACITY).await.unwrap());
            }
            v
        })
    });
    let all: BTreeSet<u32> = firsts.into_iter().flatten().collect();
    // 160 blocks of 10, each its own: exactly 1, 11, …, 1591.
    assert_eq!(all, (0..160).map(|i| 1 + 10 * i).collect());
}

// --- the duplicate filter ---

async fn duplicate_filter_claim_settle_repeat(s: &dyn Store) {
    assert_eq!(
        s.claim("ID-1", 1_000, Some(9_000)).await.unwrap(),
        Claim::New
    );
    // In flight: a duplicate with no exchange yet, with what the first claim said.
    let Claim::Duplicate(d) = s.claim("ID-1", 2_000, None).await.unwrap() else {
        panic!("a second claim must not win");
    };
    assert_eq!(
        (d.seq, d.first_ms, d.repeats, d.scade_ms),
        (0, 1_000, 0, Some(9_000))
    );
    s.settle("ID-1", 42).await.unwrap();
    s.count_repeat("ID-1").await.unwrap();
    s.count_repeat("ID-1").await.unwrap();
    let Claim::Duplicate(d) = s.claim("ID-1", 3_000, Some(1)).await.unwrap() else {
        panic!("a settled id must not be claimed again");
    };
    assert_eq!(
        (d.seq, d.first_ms, d.repeats, d.scade_ms),
        (42, 1_000, 2, Some(9_000))
    );
    // Another id is not affected; a repeat of an unknown id creates nothing.
    s.count_repeat("ID-X").await.unwrap();
    assert_eq!(s.claim("ID-2", 1_000, None).await.unwrap(), Claim::New);
    assert_eq!(s.claim("ID-X", 1_000, None).await.unwrap(), Claim::New);
}

async fn duplicate_filter_release_lets_a_new_claim_win(s: &dyn Store) {
    assert_eq!(s.claim("ID-1", 1_000, None).await.unwrap(), Claim::New);
    s.release("ID-1").await.unwrap();
    assert_eq!(
        s.claim("ID-1", 2_000, Some(5_000)).await.unwrap(),
        Claim::New
    );
    let Claim::Duplicate(d) = s.claim("ID-1", 3_000, None).await.unwrap() else {
        panic!("the new claim owns it");
    };
    assert_eq!((d.seq, d.first_ms, d.scade_ms), (0, 2_000, Some(5_000)));
    // Releasing an unknown id is harmless.
    s.release("ID-NONE").await.unwrap();
}

async fn one_concurrent_claimant_wins(s: &dyn Store) {
    for round in 0..5 {
        let id = format!("ID-{round}");
        let esiti = on_threads(8, |i| block_on(s.claim(&id, i as i64, None)).unwrap());
        let nuovi = esiti.iter().filter(|c| **c == Claim::New).count();
        assert_eq!(nuovi, 1, "round {round}: {esiti:?}");
    }
}

// --- sequence numbers and exchanges ---

async fn sequence_numbers_strictly_increase(s: &dyn Store) {
    let mut prima = s.next_seq().await.unwrap();
    assert!(prima >= 1);
    for _ in 0..200 {
        let n = s.next_seq().await.unwrap();
        assert!(n > prima, "{n} after {prima}");
        prima = n;
    }
    // Also from many threads: never the same twice.
    let v = on_threads(4, |_| {
        block_on(async {
            let mut v = Vec::new();
            for _ in 0..50 {
                v.push(s.next_seq().await.unwrap());
            }
            v
        })
    });
    let all: BTreeSet<u64> = v.into_iter().flatten().collect();
    assert_eq!(all.len(), 200);
    assert!(*all.iter().next().unwrap() > prima);
}

async fn exchanges_round_trip(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:01.400+01:00");
    let piccolo = scambio(s.next_seq().await.unwrap(), "A", quando);
    // Larger than 8 KiB, and every byte value (not UTF-8).
    let mut grande = scambio(s.next_seq().await.unwrap(), "B", quando);
    grande.request = (0..100_000u32).map(|i| (i % 256) as u8).collect();
    grande.response = (0..20_000u32).map(|i| (255 - i % 256) as u8).collect();
    // Small but binary, and an empty response; never answered.
    let mut binario = scambio(s.next_seq().await.unwrap(), "C", quando);
    binario.request = vec![0, 0xff, 0xfe, b'<', 0, 0x80];
    binario.response = Vec::new();
    binario.answered_at = None;
    binario.outcome = Outcome::ErroreBusta;
    binario.direction = Direction::Out;
    for e in [&piccolo, &grande, &binario] {
        s.put_exchange(e).await.unwrap();
    }
    for e in [&piccolo, &grande, &binario] {
        let back = s.exchange(e.seq).await.unwrap().expect("stored");
        assert_eq!(&back, e, "seq {}", e.seq);
        assert_eq!(back.request, e.request);
        assert_eq!(back.response, e.response);
        assert_eq!(back.received_at.offset(), e.received_at.offset());
    }
    assert_eq!(s.exchange(binario.seq + 1000).await.unwrap(), None);
}

async fn exchange_by_request_and_response_id(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    let a = scambio(s.next_seq().await.unwrap(), "A", quando);
    let mut b = scambio(s.next_seq().await.unwrap(), "B", quando);
    b.request = vec![b'x'; 20_000];
    s.put_exchange(&a).await.unwrap();
    s.put_exchange(&b).await.unwrap();
    for (id, atteso) in [("A", &a), ("A-R", &a), ("B", &b), ("B-R", &b)] {
        let e = s.exchange_by_id(id).await.unwrap().expect(id);
        assert_eq!(&e, atteso, "{id}");
        // With its raw messages.
        assert_eq!(e.request, atteso.request, "{id}");
    }
    assert_eq!(s.exchange_by_id("C").await.unwrap(), None);
    // An exchange with no ids is found by seq only.
    let mut c = Exchange::nuovo(s.next_seq().await.unwrap(), Direction::In, quando);
    c.request = b"not a busta".to_vec();
    s.put_exchange(&c).await.unwrap();
    assert_eq!(s.exchange(c.seq).await.unwrap(), Some(c));
    assert_eq!(s.exchange_by_id("").await.unwrap(), None);
}

async fn the_first_exchange_keeps_its_id(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    let primo = scambio(s.next_seq().await.unwrap(), "A", quando);
    s.put_exchange(&primo).await.unwrap();
    // A duplicate's record: the same request id, an answer of its own.
    let mut doppio = scambio(s.next_seq().await.unwrap(), "A", quando);
    doppio.response_id = Some("D-R".into());
    doppio.outcome = Outcome::Duplicato;
    s.put_exchange(&doppio).await.unwrap();
    assert_eq!(
        s.exchange_by_id("A").await.unwrap().map(|e| e.seq),
        Some(primo.seq)
    );
    assert_eq!(
        s.exchange_by_id("A-R").await.unwrap().map(|e| e.seq),
        Some(primo.seq)
    );
    assert_eq!(
        s.exchange_by_id("D-R").await.unwrap().map(|e| e.seq),
        Some(doppio.seq)
    );
    // Both records are kept.
    assert_eq!(s.exchange(doppio.seq).await.unwrap(), Some(doppio));
}

async fn an_exchange_put_again_is_replaced(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    let seq = s.next_seq().await.unwrap();
    // First recorded unanswered, with a large request; then answered, smaller.
    let mut e = scambio(seq, "A", quando);
    e.response_id = None;
    e.answered_at = None;
    e.outcome = Outcome::Fault;
    e.request = vec![b'a'; 30_000];
    s.put_exchange(&e).await.unwrap();
    let mut fatto = scambio(seq, "A", quando);
    fatto.request = vec![b'b'; 9_000];
    s.put_exchange(&fatto).await.unwrap();
    assert_eq!(s.exchange(seq).await.unwrap(), Some(fatto.clone()));
    assert_eq!(s.exchange_by_id("A-R").await.unwrap(), Some(fatto.clone()));
    assert_eq!(seqs(&s.recent(10).await.unwrap()), vec![seq]);
    assert_eq!(
        seqs(&s.exchanges_between(None, None).await.unwrap()),
        vec![seq]
    );
}

async fn an_exchange_put_again_at_another_time_moves(s: &dyn Store) {
    let seq = s.next_seq().await.unwrap();
    let prima = t("2026-11-27T08:00:00.000+01:00");
    let dopo = t("2026-11-28T08:00:00.000+01:00");
    s.put_exchange(&scambio(seq, "A", prima)).await.unwrap();
    s.put_exchange(&scambio(seq, "A", dopo)).await.unwrap();
    // Listed once, at its new time only.
    assert_eq!(
        seqs(&s.exchanges_between(None, None).await.unwrap()),
        vec![seq]
    );
    assert_eq!(
        seqs(
            &s.exchanges_between(None, Some(dopo.timestamp_millis()))
                .await
                .unwrap()
        ),
        Vec::<u64>::new()
    );
}

async fn recent_is_newest_first_without_raw_messages(s: &dyn Store) {
    assert!(s.recent(10).await.unwrap().is_empty());
    let base = t("2026-11-27T08:00:00.000+01:00");
    let mut tutti = Vec::new();
    for i in 0..6 {
        let mut e = scambio(s.next_seq().await.unwrap(), &format!("E{i}"), base);
        // Received times not in seq order: recent() goes by seq.
        e.received_at = base + Duration::seconds(if i % 2 == 0 { 100 - i } else { i });
        if i == 3 {
            e.request = vec![b'z'; 10_000];
        }
        s.put_exchange(&e).await.unwrap();
        tutti.push(e);
    }
    let r = s.recent(4).await.unwrap();
    let attesi: Vec<u64> = tutti.iter().rev().take(4).map(|e| e.seq).collect();
    assert_eq!(seqs(&r), attesi);
    for e in &r {
        assert!(
            e.request.is_empty() && e.response.is_empty(),
            "seq {}",
            e.seq
        );
        let orig = tutti.iter().find(|x| x.seq == e.seq).unwrap();
        assert_eq!(e.request_id, orig.request_id);
        assert_eq!(e.received_at, orig.received_at);
    }
    assert_eq!(s.recent(100).await.unwrap().len(), 6);
    assert!(s.recent(0).await.unwrap().is_empty());
}

async fn exchanges_between_is_half_open_by_received_time(s: &dyn Store) {
    // Received times out of seq order, in different offsets; the instant counts.
    let orari = [
        "2026-11-27T10:00:00.000+01:00", // 09:00Z
        "2026-11-27T08:30:00.000+00:00", // 08:30Z
        "2026-11-27T04:00:00.000-05:00", // 09:00Z, as the first
        "2026-11-27T12:00:00.000+02:00", // 10:00Z
        "2026-11-27T07:59:59.999+00:00", // 07:59:59.999Z
        "2026-11-27T09:00:00.001Z",      // 09:00:00.001Z
    ];
    let mut ex = Vec::new();
    for (i, o) in orari.iter().enumerate() {
        let mut e = scambio(s.next_seq().await.unwrap(), &format!("T{i}"), t(o));
        if i == 1 {
            e.request = vec![7; 9_000];
        }
        s.put_exchange(&e).await.unwrap();
        ex.push(e);
    }
    let q = |i: usize| ex[i].seq;
    let ms = |s: &str| t(s).timestamp_millis();
    let between = |from: Option<i64>, to: Option<i64>| async move {
        let v = s.exchanges_between(from, to).await.unwrap();
        assert!(
            v.iter()
                .all(|e| e.request.is_empty() && e.response.is_empty()),
            "without raw messages"
        );
        seqs(&v)
    };
    // Everything, oldest first; the same instant in seq order.
    assert_eq!(
        between(None, None).await,
        vec![q(4), q(1), q(0), q(2), q(5), q(3)]
    );
    // [09:00Z, 10:00Z): from included, to excluded.
    assert_eq!(
        between(
            Some(ms("2026-11-27T09:00:00Z")),
            Some(ms("2026-11-27T10:00:00Z"))
        )
        .await,
        vec![q(0), q(2), q(5)]
    );
    // A bound given in another offset is the same instant.
    assert_eq!(
        between(
            Some(ms("2026-11-27T10:00:00+01:00")),
            Some(ms("2026-11-27T11:00:00+01:00"))
        )
        .await,
        vec![q(0), q(2), q(5)]
    );
    assert_eq!(
        between(None, Some(ms("2026-11-27T09:00:00Z"))).await,
        vec![q(4), q(1)]
    );
    assert_eq!(
        between(Some(ms("2026-11-27T09:00:00.001Z")), None).await,
        vec![q(5), q(3)]
    );
    assert_eq!(
        between(None, Some(ms("2026-11-27T07:59:59.999Z"))).await,
        Vec::<u64>::new()
    );
    assert_eq!(
        between(Some(ms("2026-11-27T07:59:59.999Z")), None)
            .await
            .len(),
        6
    );
    // Empty and reversed ranges.
    let x = ms("2026-11-27T09:00:00Z");
    assert!(between(Some(x), Some(x)).await.is_empty());
    assert!(between(Some(x + 1), Some(x)).await.is_empty());
    // Before the epoch is a time like any other.
    let antico = scambio(s.next_seq().await.unwrap(), "OLD", at_ms(-5_000));
    s.put_exchange(&antico).await.unwrap();
    assert_eq!(between(None, Some(0)).await, vec![antico.seq]);
    assert_eq!(between(Some(-5_000), Some(-4_999)).await, vec![antico.seq]);
}

// --- moduli and their summaries ---

async fn moduli_round_trip_and_kinds_stay_apart(s: &dyn Store) {
    let c1 = modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo);
    let c2 = modulo(Tipo::Candidatura, "C2", StatoModulo::Scaduto);
    // A vacancy and a messaggio with the same code are other records.
    let v1 = modulo(Tipo::Vacancy, "C1", StatoModulo::Attivo);
    let m1 = modulo(Tipo::Messaggio, "C1", StatoModulo::Attivo);
    assert!(!s.has_modulo(Tipo::Candidatura, "C1").await.unwrap());
    s.apply(vec![Write::Modulo(c2.clone()), Write::Modulo(c1.clone())])
        .await
        .unwrap();
    s.apply(vec![Write::Modulo(v1.clone())]).await.unwrap();
    s.apply(vec![Write::Modulo(m1.clone())]).await.unwrap();
    for m in [&c1, &c2, &v1, &m1] {
        assert_eq!(s.modulo(m.kind, &m.code).await.unwrap().as_ref(), Some(m));
        assert!(s.has_modulo(m.kind, &m.code).await.unwrap());
    }
    assert_eq!(s.modulo(Tipo::Vacancy, "C2").await.unwrap(), None);
    assert!(!s.has_modulo(Tipo::Vacancy, "C2").await.unwrap());
    assert!(!s.has_modulo(Tipo::Messaggio, "C2").await.unwrap());
    let codici = |v: Vec<StoredModulo>| {
        let mut c: Vec<(Tipo, String)> = v.into_iter().map(|m| (m.kind, m.code)).collect();
        c.sort();
        c
    };
    assert_eq!(
        codici(s.moduli(Tipo::Candidatura).await.unwrap()),
        vec![
            (Tipo::Candidatura, "C1".into()),
            (Tipo::Candidatura, "C2".into())
        ]
    );
    assert_eq!(s.moduli(Tipo::Vacancy).await.unwrap(), vec![v1]);
    assert_eq!(s.moduli(Tipo::Messaggio).await.unwrap(), vec![m1]);
}

async fn a_modulo_written_again_has_its_new_state(s: &dyn Store) {
    let v1 = modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo);
    s.apply(vec![Write::Modulo(v1.clone())]).await.unwrap();
    let v2 = StoredModulo {
        stato: StatoModulo::Rettificato,
        updated_at: t("2026-11-28T09:00:00.000+01:00"),
        attuale: Some("C1-BIS".into()),
        destinazioni: vec!["SPC/LAZIO".into(), "SPC/UMBRIA".into()],
        ..v1.clone()
    };
    s.apply(vec![Write::Modulo(v2.clone())]).await.unwrap();
    assert_eq!(s.modulo(Tipo::Candidatura, "C1").await.unwrap(), Some(v2));
    assert_eq!(s.moduli(Tipo::Candidatura).await.unwrap().len(), 1);
}

async fn large_moduli_round_trip(s: &dyn Store) {
    let base = modulo(Tipo::Candidatura, "BIG", StatoModulo::Attivo);
    let grande = |c: &str, n: usize| StoredModulo {
        xml: format!("<Candidatura>{}</Candidatura>", c.repeat(n)),
        ..base.clone()
    };
    let v1 = grande("<è/>", 10_000);
    s.apply(vec![Write::Modulo(v1.clone())]).await.unwrap();
    assert_eq!(s.modulo(Tipo::Candidatura, "BIG").await.unwrap(), Some(v1));
    // Larger, in a batch with other writes; then small; then large again.
    let v2 = grande("<b/>", 30_000);
    let seq = s.next_seq().await.unwrap();
    s.apply(vec![
        Write::Modulo(v2.clone()),
        Write::Forward(forward(seq, "BIG")),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap(),
        Some(v2.clone())
    );
    assert_eq!(s.moduli(Tipo::Candidatura).await.unwrap(), vec![v2.clone()]);
    // A purge keeps moduli whole.
    s.purge(&PurgeLimits {
        exchanges_before_ms: Some(i64::MAX),
        dup_before_ms: Some(i64::MAX),
        expired_before_ms: i64::MAX,
    })
    .await
    .unwrap();
    assert_eq!(
        s.modulo(Tipo::Candidatura, "BIG").await.unwrap(),
        Some(v2.clone())
    );
    let v3 = StoredModulo {
        xml: "<Candidatura/>".into(),
        ..v2
    };
    s.apply(vec![Write::Modulo(v3.clone())]).await.unwrap();
    assert_eq!(s.modulo(Tipo::Candidatura, "BIG").await.unwrap(), Some(v3));
    let v4 = grande("<d/>", 5_000);
    s.apply(vec![Write::Modulo(v4.clone())]).await.unwrap();
    assert_eq!(s.modulo(Tipo::Candidatura, "BIG").await.unwrap(), Some(v4));
    let r = s.check().await.unwrap();
    assert!(r.ok(), "{r:?}");
}

fn codici_di(v: &[std::sync::Arc<pdd::store::Sommario>]) -> Vec<String> {
    let mut c: Vec<String> = v.iter().map(|s| s.codice.clone()).collect();
    c.sort();
    c
}

async fn sommari_of_candidature_and_vacancies_only(s: &dyn Store) {
    s.apply(vec![
        Write::Modulo(modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo)),
        Write::Modulo(modulo(Tipo::Candidatura, "C2", StatoModulo::Chiuso)),
        Write::Modulo(modulo(Tipo::Candidatura, "C3", StatoModulo::Attivo)),
        Write::Modulo(modulo(Tipo::Vacancy, "V1", StatoModulo::Scaduto)),
        Write::Modulo(modulo(Tipo::Messaggio, "M1", StatoModulo::Attivo)),
    ])
    .await
    .unwrap();
    let tutti: pdd::store::FiltroSommari<'_> = &|_| true;
    assert_eq!(
        codici_di(&s.sommari(Tipo::Candidatura, tutti).await.unwrap()),
        vec!["C1", "C2", "C3"]
    );
    assert_eq!(
        codici_di(&s.sommari(Tipo::Vacancy, tutti).await.unwrap()),
        vec!["V1"]
    );
    assert!(s.sommari(Tipo::Messaggio, tutti).await.unwrap().is_empty());
    // The filter selects.
    let attivi = s
        .sommari(Tipo::Candidatura, &|x| x.stato() == StatoModulo::Attivo)
        .await
        .unwrap();
    assert_eq!(codici_di(&attivi), vec!["C1", "C3"]);
    let nessuno = s.sommari(Tipo::Candidatura, &|_| false).await.unwrap();
    assert!(nessuno.is_empty());
    // The filter sees the summary's dates as the record has them.
    let c1 = modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo);
    let stesso = s
        .sommari(Tipo::Candidatura, &|x| {
            x.codice() == "C1"
                && x.aggiornata() == c1.updated_at
                && x.aggiornata_ms() == c1.updated_at.timestamp_millis()
                && x.scadenza() == c1.scadenza
        })
        .await
        .unwrap();
    assert_eq!(codici_di(&stesso), vec!["C1"]);
    // A summary says what the record says.
    let m = modulo(Tipo::Vacancy, "V1", StatoModulo::Scaduto);
    let v = s.sommari(Tipo::Vacancy, tutti).await.unwrap();
    assert_eq!(v[0].stato, StatoModulo::Scaduto);
    assert_eq!(v[0].inserita, m.received_at);
    assert_eq!(v[0].aggiornata, m.updated_at);
    assert_eq!(v[0].scadenza, m.scadenza);
}

async fn a_sommario_carries_the_scheda_only_while_active(s: &dyn Store) {
    let mut attivo = modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo);
    if let Some(sc) = attivo.scheda.as_mut() {
        sc.professioni = vec!["5.1.2.2.0".into(), "3.3.1.2.1".into()];
        sc.comune = Some("H501".into());
    }
    let chiuso = modulo(Tipo::Candidatura, "C2", StatoModulo::Chiuso);
    let mut senza = modulo(Tipo::Candidatura, "C3", StatoModulo::Attivo);
    senza.scheda = None;
    s.apply(vec![
        Write::Modulo(attivo.clone()),
        Write::Modulo(chiuso),
        Write::Modulo(senza),
    ])
    .await
    .unwrap();
    let v = s.sommari(Tipo::Candidatura, &|_| true).await.unwrap();
    let di = |c: &str| v.iter().find(|x| x.codice == c).unwrap().clone();
    let scheda = di("C1")
        .scheda
        .clone()
        .expect("an active modulo is published");
    let orig = attivo.scheda.unwrap();
    // What a search filters on, and only that.
    assert_eq!(scheda, pdd::modulo::ricerca::Ricercabile::from(&orig));
    assert_eq!(&*scheda.testo, orig.testo);
    assert_eq!(scheda.professioni.len(), orig.professioni.len());
    assert_eq!(scheda.comune.as_deref(), orig.comune.as_deref());
    assert_eq!(di("C2").scheda, None, "a closed modulo is not published");
    assert_eq!(di("C3").scheda, None, "nothing to publish");
    // A search sees the published one only, by what it filters on.
    let cerca = |c: pdd::store::Criteri| async move {
        let tutti = pdd::store::Pagina::Numero(1);
        let v = s
            .sommari_in_pagina(Tipo::Candidatura, &|x| x.ammesso(&c), &tutti, 10)
            .await
            .unwrap();
        assert_eq!(v.totale, v.pagina.len());
        v.pagina
    };
    assert_eq!(cerca(pdd::store::Criteri::default()).await, vec!["C1"]);
    let professione = orig.professioni[0].clone();
    assert_eq!(
        cerca(pdd::store::Criteri {
            professione: Some(professione),
            ..Default::default()
        })
        .await,
        vec!["C1"]
    );
    assert!(cerca(pdd::store::Criteri {
        professione: Some("9.9.9".into()),
        ..Default::default()
    })
    .await
    .is_empty());
    let per_testo = |q: &str| pdd::store::Criteri {
        q: Some(q.into()),
        comune: Some("h501".into()),
        ..Default::default()
    };
    assert_eq!(cerca(per_testo("Cuoco")).await, vec!["C1"]);
    assert!(cerca(per_testo("cameriere")).await.is_empty());
    // The stored modulo itself keeps its published fields.
    let m = s.modulo(Tipo::Candidatura, "C1").await.unwrap().unwrap();
    assert!(m.scheda.unwrap().pubblico.is_some());
}

async fn sommari_in_pagina_newest_first_then_by_code(s: &dyn Store) {
    // Four active, one closed; two updated at the same moment.
    let at = |code: &str, ora: &str, stato: StatoModulo| StoredModulo {
        updated_at: t(ora),
        ..modulo(Tipo::Candidatura, code, stato)
    };
    s.apply(vec![
        Write::Modulo(at(
            "C1",
            "2026-11-27T10:00:00.000+01:00",
            StatoModulo::Attivo,
        )),
        Write::Modulo(at(
            "C2",
            "2026-11-29T10:00:00.000+01:00",
            StatoModulo::Attivo,
        )),
        Write::Modulo(at(
            "C3",
            "2026-11-28T10:00:00.000+01:00",
            StatoModulo::Attivo,
        )),
        Write::Modulo(at("C0", "2026-11-28T09:00:00.000Z", StatoModulo::Attivo)),
        Write::Modulo(at(
            "C4",
            "2026-11-30T10:00:00.000+01:00",
            StatoModulo::Chiuso,
        )),
    ])
    .await
    .unwrap();
    let attivi: pdd::store::FiltroSommari<'_> = &|x| x.stato() == StatoModulo::Attivo;
    let pagina = |p: pdd::store::Pagina| async move {
        s.sommari_in_pagina(Tipo::Candidatura, attivi, &p, 2)
            .await
            .unwrap()
    };
    let prima = pagina(pdd::store::Pagina::Numero(1)).await;
    assert_eq!(prima.totale, 4);
    // C3 and C0 are the same instant (10:00 at +01:00, 09:00 in UTC): by code.
    assert_eq!(prima.pagina, vec!["C2", "C0"]);
    let cursore = prima.successivo.expect("more follow");
    let seconda = pagina(pdd::store::Pagina::Dopo(cursore)).await;
    assert_eq!(seconda.pagina, vec!["C3", "C1"]);
    assert_eq!(seconda.successivo, None);
    assert_eq!(
        pagina(pdd::store::Pagina::Numero(2)).await.pagina,
        vec!["C3", "C1"]
    );
    assert!(pagina(pdd::store::Pagina::Numero(3))
        .await
        .pagina
        .is_empty());
}

async fn sommari_follow_overwrites(s: &dyn Store) {
    let v1 = modulo(Tipo::Vacancy, "V1", StatoModulo::Attivo);
    s.apply(vec![Write::Modulo(v1.clone())]).await.unwrap();
    let v2 = StoredModulo {
        stato: StatoModulo::Chiuso,
        updated_at: t("2026-12-01T09:00:00.000+01:00"),
        ..v1.clone()
    };
    s.apply(vec![Write::Modulo(v2.clone())]).await.unwrap();
    let v = s.sommari(Tipo::Vacancy, &|_| true).await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].stato, StatoModulo::Chiuso);
    assert_eq!(v[0].aggiornata, v2.updated_at);
    assert_eq!(v[0].scheda, None);
    assert!(s
        .sommari(Tipo::Vacancy, &|x| x.stato() == StatoModulo::Attivo)
        .await
        .unwrap()
        .is_empty());
    // Active again (in a batch with another write): published again.
    s.apply(vec![
        Write::Modulo(v1),
        Write::User(user("operatore", "00")),
    ])
    .await
    .unwrap();
    let v = s.sommari(Tipo::Vacancy, &|_| true).await.unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].stato, StatoModulo::Attivo);
    assert!(v[0].scheda.is_some());
}

// --- atomic batches, outbox, EURES, users, rapporti, contatti, diagnostics ---

async fn a_batch_of_every_kind_is_visible_at_once(s: &dyn Store) {
    s.apply(Vec::new()).await.unwrap();
    let seq = s.next_seq().await.unwrap();
    let eseq = s.next_seq().await.unwrap();
    let m = modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo);
    let f = forward(seq, "C1");
    let e = eures(eseq, Tipo::Candidatura, "C1");
    let c = contatto("K1", "buongiorno");
    let u = user("operatore", "ab12");
    let r = rapporto("5.1.2.2.0");
    let ora = t("2026-11-27T10:00:00.123+01:00");
    let d = diagnostico(ora, "ricevuta");
    s.apply(vec![
        Write::Modulo(m.clone()),
        Write::Forward(f.clone()),
        Write::Eures(e.clone()),
        Write::Contatto(c.clone()),
        Write::User(u.clone()),
        Write::Rapporto("RSSMRA80A01H501U".into(), r.clone()),
        Write::Diagnostico(d.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.modulo(Tipo::Candidatura, "C1").await.unwrap(), Some(m));
    assert_eq!(
        s.sommari(Tipo::Candidatura, &|_| true).await.unwrap().len(),
        1
    );
    assert_eq!(s.outbox().await.unwrap(), vec![f]);
    assert_eq!(s.eures().await.unwrap(), vec![e]);
    assert_eq!(s.contatti().await.unwrap(), vec![c]);
    assert_eq!(s.user("operatore").await.unwrap(), Some(u));
    assert_eq!(s.rapporto("RSSMRA80A01H501U").await.unwrap(), Some(r));
    assert_eq!(s.diagnostici(None, None).await.unwrap(), vec![d]);
    // An empty batch changes nothing.
    s.apply(Vec::new()).await.unwrap();
    assert_eq!(s.outbox().await.unwrap().len(), 1);
}

async fn the_outbox_keeps_forwards_in_seq_order(s: &dyn Store) {
    assert!(s.outbox().await.unwrap().is_empty());
    let seqs: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(s.next_seq().await.unwrap());
        }
        v
    };
    // Written out of order, in separate batches and together.
    s.apply(vec![Write::Forward(forward(seqs[2], "C3"))])
        .await
        .unwrap();
    s.apply(vec![
        Write::Forward(forward(seqs[0], "C1")),
        Write::Forward(forward(seqs[3], "C4")),
        Write::Forward(forward(seqs[1], "C2")),
    ])
    .await
    .unwrap();
    let codici = |v: Vec<Forward>| v.into_iter().map(|f| f.codice).collect::<Vec<_>>();
    assert_eq!(codici(s.outbox().await.unwrap()), ["C1", "C2", "C3", "C4"]);
    // The same seq: its new state replaces it.
    let respinto = Forward {
        tentativi: 3,
        prossimo_ms: 1_800_000_000_000,
        stato: ForwardState::Refused,
        errore: Some("EGOV_IT_300".into()),
        ..forward(seqs[1], "C2")
    };
    s.apply(vec![Write::Forward(respinto.clone())])
        .await
        .unwrap();
    let o = s.outbox().await.unwrap();
    assert_eq!(o.len(), 4);
    assert_eq!(o[1], respinto);
    // Done: out of the outbox; done twice, or never queued, is harmless.
    s.apply(vec![
        Write::ForwardDone(seqs[0]),
        Write::ForwardDone(seqs[2]),
    ])
    .await
    .unwrap();
    s.apply(vec![Write::ForwardDone(seqs[0])]).await.unwrap();
    s.apply(vec![Write::ForwardDone(seqs[3] + 1000)])
        .await
        .unwrap();
    assert_eq!(codici(s.outbox().await.unwrap()), ["C2", "C4"]);
    // Queued and done in one batch: gone.
    let n = s.next_seq().await.unwrap();
    s.apply(vec![
        Write::Forward(forward(n, "C5")),
        Write::ForwardDone(n),
    ])
    .await
    .unwrap();
    assert_eq!(codici(s.outbox().await.unwrap()), ["C2", "C4"]);
}

async fn eures_documents_are_kept_apart_from_the_outbox(s: &dyn Store) {
    let mut docs = Vec::new();
    for (kind, codice) in [
        (Tipo::Vacancy, "V1"),
        (Tipo::Candidatura, "C1"),
        (Tipo::Candidatura, "C1"),
        (Tipo::Candidatura, "C0"),
    ] {
        docs.push(eures(s.next_seq().await.unwrap(), kind, codice));
    }
    s.apply(docs.iter().cloned().map(Write::Eures).collect())
        .await
        .unwrap();
    assert!(s.outbox().await.unwrap().is_empty(), "not in the outbox");
    // Every document, also two of the same modulo.
    let mut got = s.eures().await.unwrap();
    got.sort_by_key(|f| f.seq);
    assert_eq!(got, docs);
    // ForwardDone concerns the outbox only.
    s.apply(vec![Write::ForwardDone(docs[0].seq)])
        .await
        .unwrap();
    assert_eq!(s.eures().await.unwrap().len(), 4);
    // The same document written again replaces it.
    let nuovo = Forward {
        corpo: "<europass>C0 bis</europass>".into(),
        ..docs[3].clone()
    };
    s.apply(vec![Write::Eures(nuovo.clone())]).await.unwrap();
    let got = s.eures().await.unwrap();
    assert_eq!(got.len(), 4);
    assert!(got.contains(&nuovo));
}

async fn users_are_put_listed_and_removed(s: &dyn Store) {
    assert!(s.users().await.unwrap().is_empty());
    assert_eq!(s.user("anna").await.unwrap(), None);
    s.apply(vec![
        Write::User(user("carlo", "cc")),
        Write::User(user("anna", "aa")),
    ])
    .await
    .unwrap();
    s.apply(vec![Write::User(user("bruno", "bb"))])
        .await
        .unwrap();
    assert_eq!(s.user("anna").await.unwrap(), Some(user("anna", "aa")));
    let mut nomi: Vec<String> = s
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.nome)
        .collect();
    nomi.sort();
    assert_eq!(nomi, ["anna", "bruno", "carlo"]);
    // A new token replaces the old.
    s.apply(vec![Write::User(user("anna", "a2"))])
        .await
        .unwrap();
    assert_eq!(s.user("anna").await.unwrap().unwrap().sha256, "a2");
    s.apply(vec![
        Write::RemoveUser("bruno".into()),
        Write::RemoveUser("nessuno".into()),
    ])
    .await
    .unwrap();
    assert_eq!(s.user("bruno").await.unwrap(), None);
    assert_eq!(s.users().await.unwrap().len(), 2);
}

async fn rapporti_by_codice_fiscale(s: &dyn Store) {
    assert_eq!(s.rapporto("RSSMRA80A01H501U").await.unwrap(), None);
    let r = rapporto("5.1.2.2.0");
    let aperto = Rapporto {
        al: None,
        ..rapporto("2.1.1.4.1.0")
    };
    s.apply(vec![
        Write::Rapporto("RSSMRA80A01H501U".into(), r.clone()),
        Write::Rapporto("VRDLGI75B02F205X".into(), aperto.clone()),
    ])
    .await
    .unwrap();
    assert_eq!(s.rapporto("RSSMRA80A01H501U").await.unwrap(), Some(r));
    assert_eq!(
        s.rapporto("VRDLGI75B02F205X").await.unwrap(),
        Some(aperto.clone())
    );
    assert_eq!(s.rapporto("BNCGNN90C03L219Y").await.unwrap(), None);
    // The last record wins.
    let nuovo = rapporto("3.1.2.1.0");
    s.apply(vec![Write::Rapporto(
        "RSSMRA80A01H501U".into(),
        nuovo.clone(),
    )])
    .await
    .unwrap();
    assert_eq!(s.rapporto("RSSMRA80A01H501U").await.unwrap(), Some(nuovo));
}

fn intermediario(cf: &str, nome: &str, tipo: TipoIntermediario) -> Intermediario {
    Intermediario {
        codice_fiscale: cf.into(),
        denominazione: nome.into(),
        tipo,
        codice: Some("AG1".into()),
        indirizzo: Some("Via Roma 1".into()),
        comune: Some("A944".into()),
        cap: Some("40121".into()),
        telefono: None,
        fax: None,
        email: Some("info@example.it".into()),
    }
}

async fn intermediari_are_put_listed_replaced_and_removed(s: &dyn Store) {
    assert!(!s.ha_intermediari().await.unwrap());
    assert!(s.intermediari().await.unwrap().is_empty());
    let a = intermediario("80213330584", "CPI Bologna", TipoIntermediario::Cpi);
    let b = intermediario("01234567897", "Agenzia", TipoIntermediario::Agenzia);
    s.apply(vec![
        Write::Intermediario(b.clone()),
        Write::Intermediario(a.clone()),
    ])
    .await
    .unwrap();
    assert!(s.ha_intermediari().await.unwrap());
    assert_eq!(
        s.intermediario("80213330584").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(s.intermediario("00000000000").await.unwrap(), None);
    // Listed by codice fiscale.
    let cfs: Vec<String> = s
        .intermediari()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.codice_fiscale)
        .collect();
    assert_eq!(cfs, ["01234567897", "80213330584"]);
    // Imported again: replaced.
    let a2 = Intermediario {
        telefono: Some("051000000".into()),
        ..a.clone()
    };
    s.apply(vec![Write::Intermediario(a2.clone())])
        .await
        .unwrap();
    assert_eq!(s.intermediario("80213330584").await.unwrap(), Some(a2));
    s.apply(vec![
        Write::RemoveIntermediario("80213330584".into()),
        Write::RemoveIntermediario("99999999999".into()),
    ])
    .await
    .unwrap();
    assert_eq!(s.intermediario("80213330584").await.unwrap(), None);
    assert_eq!(s.intermediari().await.unwrap(), vec![b.clone()]);
    // Exported with the rest.
    let visti = std::sync::Mutex::new(Vec::new());
    s.export(&|r| {
        visti.lock().unwrap().push(r);
        true
    })
    .await
    .unwrap();
    assert!(visti
        .into_inner()
        .unwrap()
        .contains(&pdd::store::Record::Intermediario(b)));
    s.apply(vec![Write::RemoveIntermediario("01234567897".into())])
        .await
        .unwrap();
    assert!(!s.ha_intermediari().await.unwrap());
}

async fn contatti_are_listed(s: &dyn Store) {
    assert!(s.contatti().await.unwrap().is_empty());
    let a = contatto("K2", "primo");
    let b = Contatto {
        tipo: "04".into(),
        kind: Tipo::Vacancy,
        riferimento: "V9".into(),
        via: None,
        ..contatto("K1", "risposta")
    };
    s.apply(vec![Write::Contatto(a.clone())]).await.unwrap();
    s.apply(vec![Write::Contatto(b.clone())]).await.unwrap();
    let mut v = s.contatti().await.unwrap();
    v.sort_by(|x, y| x.codice.cmp(&y.codice));
    assert_eq!(v, vec![b, a.clone()]);
    // The same codice: replaced.
    let a2 = Contatto {
        testo: "corretto".into(),
        ..a
    };
    s.apply(vec![Write::Contatto(a2.clone())]).await.unwrap();
    let v = s.contatti().await.unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.contains(&a2));
}

async fn diagnostici_are_half_open_and_oldest_first(s: &dyn Store) {
    let base = t("2026-11-27T10:00:00.000+01:00");
    let ms = base.timestamp_millis();
    // Written out of time order; two at the same millisecond; one in another offset.
    let d3 = diagnostico(base + Duration::milliseconds(20), "terzo");
    let d1 = diagnostico(base, "primo");
    let d1b = diagnostico(base, "primo bis");
    let d2 = diagnostico(t("2026-11-27T09:00:00.010Z"), "secondo");
    s.apply(vec![Write::Diagnostico(d3.clone())]).await.unwrap();
    s.apply(vec![Write::Diagnostico(d1.clone())]).await.unwrap();
    s.apply(vec![
        Write::Diagnostico(d1b.clone()),
        Write::Diagnostico(d2.clone()),
    ])
    .await
    .unwrap();
    let msg = |v: Vec<Diagnostico>| v.into_iter().map(|d| d.messaggio).collect::<Vec<_>>();
    assert_eq!(
        msg(s.diagnostici(None, None).await.unwrap()),
        ["primo", "primo bis", "secondo", "terzo"]
    );
    assert_eq!(
        msg(s.diagnostici(Some(ms), Some(ms + 1)).await.unwrap()),
        ["primo", "primo bis"]
    );
    assert_eq!(
        msg(s.diagnostici(Some(ms + 1), Some(ms + 20)).await.unwrap()),
        ["secondo"]
    );
    assert_eq!(
        msg(s.diagnostici(Some(ms + 10), None).await.unwrap()),
        ["secondo", "terzo"]
    );
    assert_eq!(
        msg(s.diagnostici(None, Some(ms)).await.unwrap()),
        Vec::<String>::new()
    );
    assert!(s.diagnostici(Some(ms), Some(ms)).await.unwrap().is_empty());
    // Read back whole.
    let v = s.diagnostici(Some(ms + 20), None).await.unwrap();
    assert_eq!(v, vec![d3]);
}

async fn partners_are_put_listed_replaced_and_removed(s: &dyn Store) {
    assert!(s.partners().await.unwrap().is_empty());
    let a = Soggetto::new("SPC", "LAZIO");
    let b = Soggetto::new("AOO", "UMBRIA");
    s.put_partner(&a).await.unwrap();
    s.put_partner(&b).await.unwrap();
    let mut v = s.partners().await.unwrap();
    v.sort_by(|x, y| x.nome.cmp(&y.nome));
    assert_eq!(v, vec![a.clone(), b.clone()]);
    // The same tipo and nome: replaced.
    let a2 = Soggetto {
        url: Some("https://lazio.example.it/pdd/PA".into()),
        ..a.clone()
    };
    s.put_partner(&a2).await.unwrap();
    let v = s.partners().await.unwrap();
    assert_eq!(v.len(), 2);
    assert!(v.contains(&a2) && !v.contains(&a));
    // The same nome with another tipo is another partner.
    let a3 = Soggetto::new("AOO", "LAZIO");
    s.put_partner(&a3).await.unwrap();
    assert_eq!(s.partners().await.unwrap().len(), 3);
    assert!(s.remove_partner("SPC", "LAZIO").await.unwrap());
    assert!(!s.remove_partner("SPC", "LAZIO").await.unwrap());
    assert!(!s.remove_partner("SPC", "NESSUNO").await.unwrap());
    let mut v = s.partners().await.unwrap();
    v.sort_by(|x, y| x.nome.cmp(&y.nome));
    assert_eq!(v, vec![a3, b]);
}

// --- care ---

async fn flush_summary_and_stats(s: &dyn Store) {
    assert!(!s.engine().is_empty());
    s.flush().await.unwrap();
    assert!(!s.summary().await.unwrap().trim().is_empty());
    let quando = t("2026-11-27T08:00:00.000+01:00");
    for i in 0..3 {
        let e = scambio(s.next_seq().await.unwrap(), &format!("S{i}"), quando);
        s.put_exchange(&e).await.unwrap();
    }
    salva(s, modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo)).await;
    s.flush().await.unwrap();
    // Many waiting at once.
    let (a, b, c) = tokio::join!(s.flush(), s.flush(), s.flush());
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert!(!s.summary().await.unwrap().trim().is_empty());
    let st = s.stats().await.unwrap();
    let voci = |nome: &str| st.trees.iter().find(|x| x.name == nome).map(|x| x.entries);
    assert_eq!(voci("exchanges"), Some(3), "{st:?}");
    assert_eq!(voci("moduli"), Some(1), "{st:?}");
}

async fn check_is_ok_on_a_consistent_store(s: &dyn Store) {
    let r = s.check().await.unwrap();
    assert!(r.ok(), "an empty store: {r:?}");
    let quando = t("2026-11-27T08:00:00.000+01:00");
    let mut n = 0;
    for (i, len) in [10usize, 20_000, 0].into_iter().enumerate() {
        let id = format!("K{i}");
        let seq = s.next_seq().await.unwrap();
        assert_eq!(s.claim(&id, 1, None).await.unwrap(), Claim::New);
        let mut e = scambio(seq, &id, quando);
        e.request = vec![b'k'; len];
        s.put_exchange(&e).await.unwrap();
        s.settle(&id, seq).await.unwrap();
        n += 1;
    }
    assert_eq!(s.claim("IN-VOLO", 1, None).await.unwrap(), Claim::New);
    s.reserve_ids(contatore("2026-11-27_10:00"), 100, CAPACITY)
        .await
        .unwrap();
    let fseq = s.next_seq().await.unwrap();
    let eseq = s.next_seq().await.unwrap();
    let grande = StoredModulo {
        xml: "<x/>".repeat(5_000),
        ..modulo(Tipo::Vacancy, "V1", StatoModulo::Attivo)
    };
    s.apply(vec![
        Write::Modulo(modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo)),
        Write::Modulo(grande),
        Write::Forward(forward(fseq, "C1")),
        Write::Eures(eures(eseq, Tipo::Candidatura, "C1")),
        Write::Contatto(contatto("K1", "x")),
        Write::User(user("u", "00")),
        Write::Rapporto("RSSMRA80A01H501U".into(), rapporto("5.1.2.2.0")),
        Write::Diagnostico(diagnostico(quando, "x")),
    ])
    .await
    .unwrap();
    s.put_partner(&Soggetto::new("SPC", "LAZIO")).await.unwrap();
    s.flush().await.unwrap();
    let r = s.check().await.unwrap();
    assert!(r.ok(), "{r:?}");
    assert!(r.problems.is_empty());
    assert_eq!(r.counts.get("exchanges"), Some(&n), "{r:?}");
}

async fn purge_takes_old_exchanges_their_ids_and_diagnostics(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    let limite = ora - 30 * GIORNO;
    // Received in seq order: 40, 31 days ago, just before the limit, at it, 2 days ago.
    let mut ex = Vec::new();
    for (i, eta) in [
        40 * GIORNO,
        31 * GIORNO,
        30 * GIORNO + 1,
        30 * GIORNO,
        2 * GIORNO,
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = scambio(
            s.next_seq().await.unwrap(),
            &format!("P{i}"),
            at_ms(ora - eta),
        );
        if i % 2 == 0 {
            e.request = vec![b'p'; 9_000 + i];
        }
        s.put_exchange(&e).await.unwrap();
        ex.push(e);
    }
    for eta in [40, 31, 30, 29, 1] {
        s.apply(vec![Write::Diagnostico(diagnostico(
            at_ms(ora - eta * GIORNO),
            &format!("{eta}"),
        ))])
        .await
        .unwrap();
    }
    salva(s, modulo(Tipo::Candidatura, "C1", StatoModulo::Scaduto)).await;
    let r = s
        .purge(&PurgeLimits {
            exchanges_before_ms: Some(limite),
            dup_before_ms: None,
            expired_before_ms: ora,
        })
        .await
        .unwrap();
    assert_eq!(r.exchanges, 3, "{r:?}");
    assert_eq!(r.ids, 6, "{r:?}");
    assert_eq!(r.diagnostici, 2, "{r:?}");
    assert_eq!(r.dup, 0, "{r:?}");
    assert!(r.stopped.is_none(), "{r:?}");
    assert!(r.removed() >= 11, "{r:?}");
    for (i, e) in ex.iter().enumerate() {
        let via = i < 3;
        assert_eq!(s.exchange(e.seq).await.unwrap().is_none(), via, "P{i}");
        for id in [format!("P{i}"), format!("P{i}-R")] {
            assert_eq!(s.exchange_by_id(&id).await.unwrap().is_none(), via, "{id}");
        }
    }
    assert_eq!(
        s.exchange(ex[3].seq).await.unwrap().unwrap().request,
        ex[3].request
    );
    assert_eq!(
        s.exchange(ex[4].seq).await.unwrap().unwrap().request,
        ex[4].request
    );
    assert_eq!(
        seqs(&s.exchanges_between(None, None).await.unwrap()),
        vec![ex[3].seq, ex[4].seq],
        "the time index follows"
    );
    assert_eq!(
        seqs(&s.recent(10).await.unwrap()),
        vec![ex[4].seq, ex[3].seq]
    );
    let rimasti: Vec<String> = s
        .diagnostici(None, None)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.messaggio)
        .collect();
    assert_eq!(rimasti, ["30", "29", "1"]);
    assert!(s.has_modulo(Tipo::Candidatura, "C1").await.unwrap());
    // Once more: nothing left to take.
    let r = s
        .purge(&PurgeLimits {
            exchanges_before_ms: Some(limite),
            dup_before_ms: None,
            expired_before_ms: ora,
        })
        .await
        .unwrap();
    assert_eq!((r.exchanges, r.ids, r.diagnostici), (0, 0, 0), "{r:?}");
    let c = s.check().await.unwrap();
    assert!(c.ok(), "{c:?}");
}

/// Exchanges go oldest first by seq, up to the first one received inside the window (as both
/// engines document): an old time behind a recent one waits for a later purge.
async fn purge_goes_in_seq_order_and_stops_inside_the_window(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    let mut ex = Vec::new();
    for (i, eta) in [40, 1, 35].into_iter().enumerate() {
        let e = scambio(
            s.next_seq().await.unwrap(),
            &format!("Q{i}"),
            at_ms(ora - eta * GIORNO),
        );
        s.put_exchange(&e).await.unwrap();
        ex.push(e);
    }
    let r = s
        .purge(&PurgeLimits {
            exchanges_before_ms: Some(ora - 30 * GIORNO),
            dup_before_ms: None,
            expired_before_ms: ora,
        })
        .await
        .unwrap();
    assert_eq!((r.exchanges, r.ids), (1, 2), "{r:?}");
    assert_eq!(s.exchange(ex[0].seq).await.unwrap(), None);
    assert_eq!(
        s.exchange_by_id("Q2").await.unwrap().map(|e| e.seq),
        Some(ex[2].seq)
    );
    assert_eq!(
        seqs(&s.exchanges_between(None, None).await.unwrap()),
        vec![ex[2].seq, ex[1].seq]
    );
    let c = s.check().await.unwrap();
    assert!(c.ok(), "{c:?}");
}

async fn purge_takes_settled_expired_duplicate_entries_only(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    let quando = at_ms(ora - GIORNO);
    let seq = s.next_seq().await.unwrap();
    s.put_exchange(&scambio(seq, "RECENTE", quando))
        .await
        .unwrap();
    // (id, first seen, busta expiry, settled)
    let casi: [(&str, i64, Option<i64>, bool); 6] = [
        ("VECCHIO", ora - 10 * GIORNO, None, true),
        ("SCADUTO", ora - 10 * GIORNO, Some(ora - 5 * GIORNO), true),
        ("LUNGA", ora - 10 * GIORNO, Some(ora + 30 * GIORNO), true),
        ("IN-VOLO", ora - 10 * GIORNO, None, false),
        ("RECENTE", ora - GIORNO, None, true),
        ("ORA-SCADE", ora - 10 * GIORNO, Some(ora), true),
    ];
    for (id, first, scade, settled) in casi {
        assert_eq!(s.claim(id, first, scade).await.unwrap(), Claim::New, "{id}");
        if settled {
            s.settle(id, seq).await.unwrap();
        }
    }
    let limiti = PurgeLimits {
        exchanges_before_ms: None,
        dup_before_ms: Some(ora - 5 * GIORNO),
        expired_before_ms: ora,
    };
    let r = s.purge(&limiti).await.unwrap();
    assert_eq!(r.dup, 2, "{r:?}");
    assert_eq!((r.exchanges, r.ids, r.diagnostici), (0, 0, 0), "{r:?}");
    for (id, tolto) in [
        ("VECCHIO", true),
        ("SCADUTO", true),
        ("LUNGA", false),
        // Kept by the purge, but left in flight for days: a new claim takes it over.
        ("IN-VOLO", true),
        ("RECENTE", false),
        ("ORA-SCADE", false),
    ] {
        let nuovo = s.claim(id, ora, None).await.unwrap() == Claim::New;
        assert_eq!(nuovo, tolto, "{id}");
    }
    assert!(s.exchange(seq).await.unwrap().is_some());
    let c = s.check().await.unwrap();
    assert!(c.ok(), "{c:?}");
}

async fn purge_without_limits_keeps_everything(s: &dyn Store) {
    let seq = s.next_seq().await.unwrap();
    s.put_exchange(&scambio(seq, "A", at_ms(1_000)))
        .await
        .unwrap();
    assert_eq!(s.claim("A", 1, None).await.unwrap(), Claim::New);
    s.settle("A", seq).await.unwrap();
    let fseq = s.next_seq().await.unwrap();
    s.apply(vec![
        Write::Diagnostico(diagnostico(at_ms(1_000), "x")),
        Write::Forward(forward(fseq, "C1")),
        Write::Modulo(modulo(Tipo::Candidatura, "C1", StatoModulo::Scaduto)),
    ])
    .await
    .unwrap();
    s.put_partner(&Soggetto::new("SPC", "LAZIO")).await.unwrap();
    let r = s
        .purge(&PurgeLimits {
            exchanges_before_ms: None,
            dup_before_ms: None,
            expired_before_ms: i64::MAX,
        })
        .await
        .unwrap();
    assert_eq!(r.removed(), 0, "{r:?}");
    assert!(s.exchange_by_id("A").await.unwrap().is_some());
    assert!(matches!(
        s.claim("A", 2, None).await.unwrap(),
        Claim::Duplicate(_)
    ));
    assert_eq!(s.diagnostici(None, None).await.unwrap().len(), 1);
    // Retention never touches moduli, the outbox or partners.
    let r = s
        .purge(&PurgeLimits {
            exchanges_before_ms: Some(i64::MAX),
            dup_before_ms: Some(i64::MAX),
            expired_before_ms: i64::MAX,
        })
        .await
        .unwrap();
    assert_eq!((r.exchanges, r.dup, r.diagnostici), (1, 1, 1), "{r:?}");
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    assert!(s.has_modulo(Tipo::Candidatura, "C1").await.unwrap());
    assert_eq!(s.partners().await.unwrap().len(), 1);
}

async fn a_backup_is_a_new_store_or_unsupported(s: &dyn Store) {
    let seq = s.next_seq().await.unwrap();
    s.put_exchange(&scambio(seq, "A", at_ms(1_000)))
        .await
        .unwrap();
    let dir = TempDir::new("backup");
    match s.backup(&dir.0, &pdd::clock::SystemClock).await {
        Err(StoreError::Unsupported(what)) => assert!(!what.is_empty()),
        Ok(m) => {
            assert_eq!(m.trees.get("exchanges"), Some(&1), "{m:?}");
            assert!(m.seq_base >= seq);
            // Not into a directory that is not empty.
            match s.backup(&dir.0, &pdd::clock::SystemClock).await {
                Err(StoreError::Invalid(_)) => {}
                r => panic!("a second backup into the same place: {r:?}"),
            }
        }
        Err(e) => panic!("a backup fails as unsupported or not at all: {e:?}"),
    }
}

async fn a_lease_is_held_by_one_holder_until_it_expires(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    assert!(s
        .lease("outbox/SPC/LAZIO", "ncn-1", ora, 60_000)
        .await
        .unwrap());
    // Another holder waits while it runs; the holder renews it.
    assert!(!s
        .lease("outbox/SPC/LAZIO", "ncn-2", ora + 1, 60_000)
        .await
        .unwrap());
    assert!(s
        .lease("outbox/SPC/LAZIO", "ncn-1", ora + 30_000, 60_000)
        .await
        .unwrap());
    assert!(!s
        .lease("outbox/SPC/LAZIO", "ncn-2", ora + 60_000, 60_000)
        .await
        .unwrap());
    // Leases are independent.
    assert!(s.lease("scadenze", "ncn-2", ora, 60_000).await.unwrap());
    // Expired (its holder died): another takes it, and the first no longer has it.
    assert!(s
        .lease("outbox/SPC/LAZIO", "ncn-2", ora + 90_000, 60_000)
        .await
        .unwrap());
    assert!(!s
        .lease("outbox/SPC/LAZIO", "ncn-1", ora + 90_001, 60_000)
        .await
        .unwrap());
}

async fn a_released_lease_is_free_and_only_its_holder_releases_it(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    assert!(s.lease("care", "ncn-1", ora, 60_000).await.unwrap());
    s.release_lease("care", "ncn-2").await.unwrap();
    assert!(!s.lease("care", "ncn-2", ora + 1, 60_000).await.unwrap());
    s.release_lease("care", "ncn-1").await.unwrap();
    assert!(s.lease("care", "ncn-2", ora + 2, 60_000).await.unwrap());
}

async fn one_of_concurrent_lease_takers_wins(s: &dyn Store) {
    let ora = 1_800_000_000_000i64;
    let vinti = on_threads(8, |i| {
        block_on(async {
            s.lease("outbox/SPC/EMILIA", &format!("ncn-{i}"), ora, 60_000)
                .await
                .unwrap()
        })
    });
    assert_eq!(vinti.iter().filter(|v| **v).count(), 1, "{vinti:?}");
}

async fn commit_exchange_writes_and_settles(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    assert_eq!(
        s.claim("C-1", quando.timestamp_millis(), None)
            .await
            .unwrap(),
        Claim::New
    );
    let e = scambio(s.next_seq().await.unwrap(), "C-1", quando);
    s.commit_exchange(&e, Some("C-1")).await.unwrap();
    assert_eq!(s.exchange(e.seq).await.unwrap(), Some(e.clone()));
    match s
        .claim("C-1", quando.timestamp_millis(), None)
        .await
        .unwrap()
    {
        Claim::Duplicate(d) => assert_eq!(d.seq, e.seq),
        c => panic!("{c:?}"),
    }
    // Without a claim to settle (an exchange refused before one was made).
    let f = scambio(s.next_seq().await.unwrap(), "C-2", quando);
    s.commit_exchange(&f, None).await.unwrap();
    assert_eq!(
        s.exchange_by_id("C-2").await.unwrap().map(|x| x.seq),
        Some(f.seq)
    );
}

async fn an_exchange_and_its_effects_are_one_write(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    assert_eq!(
        s.claim("E-1", quando.timestamp_millis(), None)
            .await
            .unwrap(),
        Claim::New
    );
    let mut e = scambio(s.next_seq().await.unwrap(), "E-1", quando);
    // Raw messages large enough to be kept in pieces by an engine that does so.
    e.request = vec![b'r'; 300_000];
    e.response = b"<risposta/>".to_vec();
    let m = modulo(Tipo::Candidatura, "EFF1", StatoModulo::Attivo);
    let f = forward(s.next_seq().await.unwrap(), "EFF1");
    // Under the moduli's lock, as the gateway writes it.
    let lock = s.lock_moduli(&["EFF1"]).await.unwrap();
    pdd::store::Effetti::new(
        lock,
        vec![Write::Modulo(m.clone()), Write::Forward(f.clone())],
    )
    .commit(s, &e, Some("E-1"))
    .await
    .unwrap();
    assert_eq!(s.exchange(e.seq).await.unwrap(), Some(e.clone()));
    assert_eq!(
        s.modulo(Tipo::Candidatura, "EFF1").await.unwrap(),
        Some(m.clone())
    );
    assert!(s.outbox().await.unwrap().contains(&f));
    assert_eq!(
        s.exchange_by_id("E-1").await.unwrap().map(|x| x.seq),
        Some(e.seq)
    );
    match s
        .claim("E-1", quando.timestamp_millis(), None)
        .await
        .unwrap()
    {
        Claim::Duplicate(d) => assert_eq!(d.seq, e.seq),
        c => panic!("{c:?}"),
    }
    // The locks were released by the write: the code can be locked again.
    drop(s.lock_moduli(&["EFF1"]).await.unwrap());
    // Without a lock (the engine's own transaction), and without a claim.
    let g = scambio(s.next_seq().await.unwrap(), "E-2", quando);
    let m2 = modulo(Tipo::Vacancy, "EFF2", StatoModulo::Attivo);
    s.commit_exchange_with(&g, None, vec![Write::Modulo(m2.clone())])
        .await
        .unwrap();
    assert_eq!(s.exchange(g.seq).await.unwrap(), Some(g));
    assert_eq!(s.modulo(Tipo::Vacancy, "EFF2").await.unwrap(), Some(m2));
    // Effects dropped unwritten (the exchange failed before its record): nothing of them.
    let lock = s.lock_moduli(&["EFF3"]).await.unwrap();
    drop(pdd::store::Effetti::new(
        lock,
        vec![Write::Modulo(modulo(
            Tipo::Candidatura,
            "EFF3",
            StatoModulo::Attivo,
        ))],
    ));
    assert_eq!(s.modulo(Tipo::Candidatura, "EFF3").await.unwrap(), None);
}

async fn an_export_hands_out_every_record(s: &dyn Store) {
    let quando = t("2026-11-27T08:00:00.000+01:00");
    s.reserve_ids(contatore("2026-11-27_08:00"), 10, CAPACITY)
        .await
        .unwrap();
    assert_eq!(
        s.claim("X-1", quando.timestamp_millis(), None)
            .await
            .unwrap(),
        Claim::New
    );
    let mut e = scambio(s.next_seq().await.unwrap(), "X-1", quando);
    e.request = b"<richiesta/>".to_vec();
    s.commit_exchange(&e, Some("X-1")).await.unwrap();
    salva(s, modulo(Tipo::Candidatura, "C1", StatoModulo::Attivo)).await;
    let visti = std::sync::Mutex::new(Vec::new());
    s.export(&|r| {
        visti.lock().unwrap().push(r);
        true
    })
    .await
    .unwrap();
    let visti = visti.into_inner().unwrap();
    let kinds: BTreeSet<&str> = visti.iter().map(|r| r.kind()).collect();
    assert!(
        ["id_counters", "dup", "exchanges", "moduli"]
            .iter()
            .all(|k| kinds.contains(k)),
        "{kinds:?}"
    );
    // The exchange comes whole, raw messages included.
    assert!(visti.contains(&pdd::store::Record::Exchange(e)));
    // A sink that says stop is not called again.
    let n = std::sync::Mutex::new(0);
    s.export(&|_| {
        *n.lock().unwrap() += 1;
        false
    })
    .await
    .unwrap();
    assert_eq!(n.into_inner().unwrap(), 1);
}

async fn a_claim_left_in_flight_is_taken_over_after_a_while(s: &dyn Store) {
    let t0 = 1_800_000_000_000i64;
    assert_eq!(s.claim("X", t0, None).await.unwrap(), Claim::New);
    match s.claim("X", t0 + 60_000, None).await.unwrap() {
        Claim::Duplicate(d) => assert_eq!(d.seq, 0),
        c => panic!("{c:?}"),
    }
    let dopo = t0 + pdd::store::ABBANDONO_MS + 1;
    assert_eq!(s.claim("X", dopo, None).await.unwrap(), Claim::New);
    // Taken over, it is in flight anew (for the new claimant).
    match s.claim("X", dopo + 1, None).await.unwrap() {
        Claim::Duplicate(d) => assert_eq!((d.seq, d.first_ms), (0, dopo)),
        c => panic!("{c:?}"),
    }
    // Settled, it is a duplicate for ever after.
    s.settle("X", 7).await.unwrap();
    match s
        .claim("X", dopo + 2 * pdd::store::ABBANDONO_MS, None)
        .await
        .unwrap()
    {
        Claim::Duplicate(d) => assert_eq!(d.seq, 7),
        c => panic!("{c:?}"),
    }
}

// --- one test per case and engine ---

/// A Candidatura published with these search fields, last updated at `aggiornata`.
fn pubblicato(
    code: &str,
    professione: &str,
    dove: Option<(&str, &str, &str)>,
    testo: &str,
    aggiornata: &str,
) -> StoredModulo {
    let mut m = modulo(Tipo::Candidatura, code, StatoModulo::Attivo);
    m.updated_at = t(aggiornata);
    let s = m.scheda.as_mut().unwrap();
    s.professioni = vec![professione.to_string()];
    (s.comune, s.provincia, s.regione) = match dove {
        Some((c, p, r)) => (Some(c.into()), Some(p.into()), Some(r.into())),
        None => (None, None, None),
    };
    s.testo = testo.into();
    m
}

/// The search of the read API: every filter, the order (newest update first, then code),
/// pages by number and by cursor, the same on every engine.
async fn published_moduli_are_searched_ordered_and_paged(s: &dyn Store) {
    let mut chiuso = pubblicato("E", "2.1.1", None, "cuoco", "2026-11-30T10:00:00+01:00");
    chiuso.stato = StatoModulo::Chiuso;
    let mut senza = pubblicato("F", "2.1.1", None, "cuoco", "2026-11-30T10:00:00+01:00");
    senza.scheda = None;
    let mut vacancy = pubblicato("V", "2.1.1", None, "cuoco", "2026-11-30T10:00:00+01:00");
    vacancy.kind = Tipo::Vacancy;
    s.apply(vec![
        Write::Modulo(pubblicato(
            "A",
            "2.1.1.4.1",
            Some(("A944", "BO", "08")),
            "cuoco esperto java",
            "2026-11-27T10:00:00+01:00",
        )),
        Write::Modulo(pubblicato(
            "B",
            "2.10.1",
            Some(("H501", "RM", "12")),
            "programmatore java",
            "2026-11-26T23:30:00+01:00",
        )),
        Write::Modulo(pubblicato(
            "C",
            "2.1",
            Some(("F205", "MI", "03")),
            "cameriere",
            "2026-11-27T10:00:00+01:00",
        )),
        // The 28th where it was updated, the 27th in UTC.
        Write::Modulo(pubblicato(
            "D",
            "5.2.2",
            None,
            "cuoco",
            "2026-11-28T00:30:00+02:00",
        )),
        Write::Modulo(chiuso),
        Write::Modulo(senza),
        Write::Modulo(vacancy),
    ])
    .await
    .unwrap();
    let cerca = |c: Criteri, pagina: Pagina, misura: usize| async move {
        let r = s
            .pubblicati(Tipo::Candidatura, &c, &pagina, misura)
            .await
            .unwrap();
        let codici: Vec<String> = r.pagina.iter().map(|m| m.code.clone()).collect();
        (r.totale, codici, r.successivo)
    };
    let tutte = |c: Criteri| async move {
        let (n, v, _) = cerca(c, Pagina::Numero(1), 100).await;
        assert_eq!(n, v.len());
        v
    };
    let c = |f: fn(&mut Criteri)| {
        let mut c = Criteri::default();
        f(&mut c);
        c
    };
    assert_eq!(tutte(Criteri::default()).await, ["D", "A", "C", "B"]);
    assert_eq!(
        tutte(c(|c| c.professione = Some("2.1".into()))).await,
        ["A", "C"],
        "a prefix by whole segments: 2.1 is not a prefix of 2.10.1"
    );
    assert_eq!(tutte(c(|c| c.comune = Some("A944".into()))).await, ["A"]);
    assert_eq!(tutte(c(|c| c.provincia = Some("RM".into()))).await, ["B"]);
    assert_eq!(tutte(c(|c| c.regione = Some("08".into()))).await, ["A"]);
    assert_eq!(
        tutte(c(|c| c.regione = Some("lombardia".into()))).await,
        ["C"],
        "by name: the region of the comune"
    );
    assert_eq!(
        tutte(c(|c| {
            c.dal = NaiveDate::from_ymd_opt(2026, 11, 27);
            c.al = NaiveDate::from_ymd_opt(2026, 11, 27);
        }))
        .await,
        ["A", "C"],
        "the day of the update where it was made"
    );
    assert_eq!(tutte(c(|c| c.q = Some("JAVA  cuoco".into()))).await, ["A"]);
    assert!(tutte(c(|c| c.q = Some("100%_".into()))).await.is_empty());
    // Pages by number and by cursor.
    let (n, p1, dopo) = cerca(Criteri::default(), Pagina::Numero(1), 3).await;
    assert_eq!((n, p1), (4, vec!["D".into(), "A".into(), "C".into()]));
    let dopo = dopo.expect("more follow");
    assert_eq!(dopo.codice, "C");
    assert_eq!(
        cerca(Criteri::default(), Pagina::Dopo(dopo), 3).await,
        (4, vec!["B".into()], None)
    );
    assert_eq!(
        cerca(Criteri::default(), Pagina::Numero(2), 3).await,
        (4, vec!["B".into()], None)
    );
    assert_eq!(
        cerca(Criteri::default(), Pagina::Numero(3), 3).await,
        (4, vec![], None)
    );
    let (_, p1, dopo) = cerca(Criteri::default(), Pagina::Numero(1), 2).await;
    let (_, p2, fine) = cerca(Criteri::default(), Pagina::Dopo(dopo.unwrap()), 2).await;
    assert_eq!(
        (p1, p2, fine),
        (
            vec!["D".into(), "A".into()],
            vec!["C".into(), "B".into()],
            None
        )
    );
    // A modulo closed since is no longer found; one updated moves to the front.
    let mut a = s.modulo(Tipo::Candidatura, "A").await.unwrap().unwrap();
    a.stato = StatoModulo::Chiuso;
    let mut b = s.modulo(Tipo::Candidatura, "B").await.unwrap().unwrap();
    b.updated_at = t("2026-12-01T08:00:00+01:00");
    s.apply(vec![Write::Modulo(a), Write::Modulo(b)])
        .await
        .unwrap();
    assert_eq!(tutte(Criteri::default()).await, ["B", "D", "C"]);
}

/// A change of moduli holds their codes: a second change of one of them waits until the first
/// writes (or gives up); what is stored is known under the lock; the write is visible at once.
async fn a_change_of_moduli_holds_their_codes_until_it_writes(s: &dyn Store) {
    use std::time::Duration as D;
    salva(s, modulo(Tipo::Candidatura, "L1", StatoModulo::Attivo)).await;
    let mut primo = s.lock_moduli(&["L1", "L2"]).await.unwrap();
    assert!(primo.has_modulo(s, Tipo::Candidatura, "L1").await.unwrap());
    assert!(!primo.has_modulo(s, Tipo::Vacancy, "L1").await.unwrap());
    assert!(!primo.has_modulo(s, Tipo::Candidatura, "L2").await.unwrap());
    // Another change of L2 waits; one of other codes does not.
    assert!(
        tokio::time::timeout(D::from_millis(300), s.lock_moduli(&["L9", "L2"]))
            .await
            .is_err(),
        "a held code was locked again"
    );
    drop(
        tokio::time::timeout(D::from_secs(5), s.lock_moduli(&["L3"]))
            .await
            .expect("a free code waits for nothing")
            .unwrap(),
    );
    let mut nuovo = modulo(Tipo::Candidatura, "L2", StatoModulo::Attivo);
    nuovo.versione = "scritto sotto il lock".into();
    primo
        .apply(
            s,
            vec![Write::Modulo(nuovo), Write::Forward(forward(7, "L2"))],
        )
        .await
        .unwrap();
    let letto = s.modulo(Tipo::Candidatura, "L2").await.unwrap().unwrap();
    assert_eq!(letto.versione, "scritto sotto il lock");
    assert_eq!(s.outbox().await.unwrap().len(), 1);
    drop(primo);
    let secondo = tokio::time::timeout(D::from_secs(5), s.lock_moduli(&["L2"]))
        .await
        .expect("released once written and dropped")
        .unwrap();
    assert!(secondo
        .has_modulo(s, Tipo::Candidatura, "L2")
        .await
        .unwrap());
    // Given up without a write: nothing written, released.
    drop(secondo);
    drop(
        tokio::time::timeout(D::from_secs(5), s.lock_moduli(&["L2"]))
            .await
            .expect("released when given up")
            .unwrap(),
    );
}

/// `contract!(case, case [sled: ignore = "…"], …)`: a `#[tokio::test]` per case in `mod sled`
/// and `mod memory`; attributes in `[sled: …]` go on the sled test only.
macro_rules! contract {
    ($($case:ident $([sled: $($sattr:meta),+])?),* $(,)?) => {
        mod sled {
            $(
                $($(#[$sattr])+)?
                #[tokio::test]
                async fn $case() {
                    let f = super::sled_store();
                    super::$case(&f.store).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test]
                async fn $case() {
                    let s = pdd::store::MemoryStore::new();
                    super::$case(&s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[cfg_attr(
                    pdd_no_postgres,
                    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
                )]
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let s = super::pg_store(stringify!($case)).await;
                    super::$case(&s).await;
                }
            )*
        }
    };
}

/// One private PostgreSQL server for the whole suite (stopped when the test process ends);
/// each case gets a schema of its own, so that cases run in parallel on one server.
fn pg_server() -> &'static pdd::kit::postgres::Postgres {
    static PG: std::sync::OnceLock<pdd::kit::postgres::Postgres> = std::sync::OnceLock::new();
    PG.get_or_init(|| {
        pdd::kit::postgres::Postgres::start(
            "contract",
            pdd::kit::postgres::PgSettings {
                // The contract is about behaviour; durability is the server's own.
                durable: false,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("a private PostgreSQL for the contract suite: {e}"))
    })
}

async fn pg_store(case: &str) -> pdd::store::PgStore {
    let url = tokio::task::spawn_blocking({
        let case = case.to_string();
        move || pg_server().url_in_schema(&case)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("{e}"));
    let mut o = pdd::store::PgOptions::new(url);
    o.pool = 4;
    pdd::store::PgStore::open(&o)
        .await
        .unwrap_or_else(|e| panic!("open the PostgreSQL store: {e}"))
}

contract!(
    id_blocks_start_at_one_and_never_overlap,
    id_counters_are_independent,
    id_counter_exhausted_is_typed,
    id_blocks_never_overlap_under_concurrency,
    duplicate_filter_claim_settle_repeat,
    duplicate_filter_release_lets_a_new_claim_win,
    one_concurrent_claimant_wins,
    sequence_numbers_strictly_increase,
    exchanges_round_trip,
    exchange_by_request_and_response_id,
    the_first_exchange_keeps_its_id,
    an_exchange_put_again_is_replaced,
    an_exchange_put_again_at_another_time_moves,
    recent_is_newest_first_without_raw_messages,
    exchanges_between_is_half_open_by_received_time,
    moduli_round_trip_and_kinds_stay_apart,
    a_modulo_written_again_has_its_new_state,
    large_moduli_round_trip,
    sommari_of_candidature_and_vacancies_only,
    a_sommario_carries_the_scheda_only_while_active,
    sommari_follow_overwrites,
    sommari_in_pagina_newest_first_then_by_code,
    a_batch_of_every_kind_is_visible_at_once,
    the_outbox_keeps_forwards_in_seq_order,
    eures_documents_are_kept_apart_from_the_outbox,
    users_are_put_listed_and_removed,
    rapporti_by_codice_fiscale,
    intermediari_are_put_listed_replaced_and_removed,
    contatti_are_listed,
    diagnostici_are_half_open_and_oldest_first,
    partners_are_put_listed_replaced_and_removed,
    flush_summary_and_stats,
    check_is_ok_on_a_consistent_store,
    purge_takes_old_exchanges_their_ids_and_diagnostics,
    purge_goes_in_seq_order_and_stops_inside_the_window,
    purge_takes_settled_expired_duplicate_entries_only,
    purge_without_limits_keeps_everything,
    a_backup_is_a_new_store_or_unsupported,
    a_lease_is_held_by_one_holder_until_it_expires,
    a_released_lease_is_free_and_only_its_holder_releases_it,
    one_of_concurrent_lease_takers_wins,
    commit_exchange_writes_and_settles,
    an_exchange_and_its_effects_are_one_write,
    an_export_hands_out_every_record,
    a_claim_left_in_flight_is_taken_over_after_a_while,
    published_moduli_are_searched_ordered_and_paged,
    a_change_of_moduli_holds_their_codes_until_it_writes,
);

/// A database of schema 2 (before the search columns) answers searches alike once migrated:
/// the columns are filled from the summaries it stored.
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_search_columns_are_filled_when_migrating() {
    let s = pg_store("migrazione_3").await;
    let mut chiuso = pubblicato("X", "2.1", None, "cuoco", "2026-11-29T10:00:00+01:00");
    chiuso.stato = StatoModulo::Chiuso;
    s.apply(vec![
        Write::Modulo(pubblicato(
            "A",
            "2.1.1",
            Some(("A944", "BO", "08")),
            "cuoco java",
            "2026-11-27T10:00:00+01:00",
        )),
        Write::Modulo(pubblicato(
            "D",
            "2.1",
            None,
            "cuoco",
            "2026-11-28T00:30:00.250+02:00",
        )),
        Write::Modulo(chiuso),
    ])
    .await
    .unwrap();
    drop(s);
    // Back to schema 2, as a database written by an earlier pdd.
    tokio::task::spawn_blocking(|| {
        pg_server().psql(
            "SET search_path TO migrazione_3;
             ALTER TABLE pdd_moduli DROP COLUMN attivo, DROP COLUMN agg_ms, DROP COLUMN giorno,
                 DROP COLUMN professioni, DROP COLUMN comune, DROP COLUMN provincia,
                 DROP COLUMN regione, DROP COLUMN testo;
             DROP TABLE pdd_intermediari;
             DELETE FROM pdd_schema WHERE versione >= 3;",
        )
    })
    .await
    .unwrap()
    .unwrap();
    let s = pg_store("migrazione_3").await;
    let cerca = |c: Criteri| {
        let s = &s;
        async move {
            let r = s
                .pubblicati(Tipo::Candidatura, &c, &Pagina::Numero(1), 10)
                .await
                .unwrap();
            r.pagina.into_iter().map(|m| m.code).collect::<Vec<_>>()
        }
    };
    assert_eq!(cerca(Criteri::default()).await, ["D", "A"]);
    let mut c = Criteri {
        regione: Some("emilia-romagna".into()),
        ..Criteri::default()
    };
    assert_eq!(cerca(c.clone()).await, ["A"]);
    c.regione = None;
    c.dal = NaiveDate::from_ymd_opt(2026, 11, 28);
    assert_eq!(
        cerca(c.clone()).await,
        ["D"],
        "the local day, from the stored time"
    );
    c.dal = None;
    c.q = Some("java".into());
    c.professione = Some("2.1".into());
    assert_eq!(cerca(c).await, ["A"]);
    // The cursor of the first page is the stored time, to the millisecond.
    let r = s
        .pubblicati(
            Tipo::Candidatura,
            &Criteri::default(),
            &Pagina::Numero(1),
            1,
        )
        .await
        .unwrap();
    let dopo = r.successivo.unwrap();
    assert_eq!(
        dopo.aggiornata_ms,
        t("2026-11-28T00:30:00.250+02:00").timestamp_millis()
    );
    let r = s
        .pubblicati(
            Tipo::Candidatura,
            &Criteri::default(),
            &Pagina::Dopo(dopo),
            1,
        )
        .await
        .unwrap();
    assert_eq!(r.pagina[0].code, "A");
}

/// The in-memory engine has no backup, and says so with a typed error.
#[tokio::test]
async fn memory_backup_is_unsupported() {
    let s = pdd::store::MemoryStore::new();
    let dir = TempDir::new("memory-backup");
    let r = s.backup(&dir.0, &pdd::clock::SystemClock).await;
    assert!(
        matches!(r, Err(StoreError::Unsupported(_))),
        "{:?}",
        r.map(|_| ())
    );
    assert!(!dir.0.exists(), "nothing written");
}

/// `StoreError` is `#[non_exhaustive]`: callers match on the variants they handle and keep a
/// default arm (this compiles only with one).
#[test]
fn store_errors_are_matched_by_variant() {
    fn what(e: &StoreError) -> &'static str {
        match e {
            StoreError::Exhausted(_) => "exhausted",
            StoreError::Unsupported(_) => "unsupported",
            StoreError::Locked { .. } => "locked",
            _ => "other",
        }
    }
    assert_eq!(what(&StoreError::Exhausted("x".into())), "exhausted");
    assert_eq!(what(&StoreError::Unsupported("backup")), "unsupported");
    assert_eq!(what(&StoreError::Closed), "other");
    assert!(!StoreError::Closed.to_string().is_empty());
}
