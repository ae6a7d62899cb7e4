//! Faults of the store in the middle of an exchange (a full disk): an engine that fails on
//! request wraps the real sled store of an NCN, and each write or flush an exchange makes is
//! failed in turn. The sender, told the exchange failed (EGOV_IT_300), finds nothing of it
//! left — no modulo, no forward, no accepted exchange, no duplicate-filter entry — and its
//! resend of the same bytes is accepted. The same engine also holds a call back on request:
//! a partner that goes away while its exchange waits on the store leaves it processed.

mod common;

use std::sync::Arc;

use pdd::clock::SystemClock;
use pdd::config::Config;
use pdd::modulo::Tipo;
use pdd::registry::Soggetto;
use pdd::rete::Ruolo;
use pdd::store::{Guasti, SledStore, Store};

fn ncn() -> Config {
    let mut c = Config {
        role: Ruolo::Ncn,
        ..Default::default()
    };
    // LAZIO is unreachable: the forward waits in the outbox, where the test can see it.
    let mut s = Soggetto::new("SPC", "LAZIO");
    s.url = Some("http://127.0.0.1:9/pdd/PA".into());
    c.registry.soggetti.push(s);
    c.outbox.retry_min_secs = 3600;
    c.outbox.retry_max_secs = 3600;
    c
}

fn cv() -> (String, String) {
    let xml = common::example("moduli/candidatura-2.0.xml");
    let codice = common::text_of(&xml, "codicecandidatura")
        .unwrap()
        .to_string();
    (
        common::Req::invio(common::invio_candidatura(&xml)).xml(),
        codice,
    )
}

async fn gateway() -> (common::Running, Arc<Guasti>) {
    gateway_con(ncn()).await
}

async fn gateway_con(mut config: Config) -> (common::Running, Arc<Guasti>) {
    let dir = common::TempDir::new("guasti");
    config.data = dir.0.join("data");
    let sled = SledStore::open(&config.data).expect("store");
    let g = Arc::new(Guasti::new(Arc::new(sled)));
    let gw = common::start_on(config, g.clone(), Arc::new(SystemClock), dir).await;
    // What the gateway writes as it starts is done before the exchange.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    (gw, g)
}

/// Nothing of the exchange is in the store.
async fn niente(store: &dyn Store, codice: &str, id: &str) {
    assert_eq!(store.modulo(Tipo::Candidatura, codice).await.unwrap(), None);
    assert!(store.outbox().await.unwrap().is_empty());
    // The failed exchange may be recorded as what it was (refused, EGOV_IT_300), never as
    // accepted.
    for e in store.recent(10).await.unwrap() {
        assert_ne!(e.outcome, pdd::store::Outcome::Ok, "{e:?}");
    }
    assert_eq!(
        store.claim(id, 0, None).await.unwrap(),
        pdd::store::Claim::New,
        "the Identificatore is free again"
    );
    store.release(id).await.unwrap();
}

/// The request is answered OK and its CV is stored.
async fn accettata(gw: &common::Running, richiesta: &str, codice: &str, quando: &str) {
    let r = common::post(&gw.url("/pdd/PA"), richiesta.as_bytes().to_vec(), &[]).await;
    assert_eq!(
        common::text_of(&r.body, "Tipo_Risposta"),
        Some("OK"),
        "{quando}: {}",
        r.body
    );
    assert!(gw
        .gw
        .store
        .modulo(Tipo::Candidatura, codice)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn an_exchange_its_store_failed_leaves_nothing_and_its_resend_is_accepted() {
    let (richiesta, codice) = cv();
    let id = common::text_of(&richiesta, "Identificatore")
        .unwrap()
        .to_string();
    // How many writes and flushes an accepted exchange makes.
    let (gw, g) = gateway().await;
    let prima = g.visti().len();
    let r = common::post(&gw.url("/pdd/PA"), richiesta.clone().into_bytes(), &[]).await;
    assert_eq!(
        common::text_of(&r.body, "Tipo_Risposta"),
        Some("OK"),
        "{}",
        r.body
    );
    // Up to the exchange's record: what comes after (a diagnostic, the outbox's attempt) is
    // not the exchange's.
    let mut passi = g.visti().split_off(prima);
    let fine = passi
        .iter()
        .position(|p| p.starts_with("commit_exchange"))
        .unwrap_or_else(|| panic!("{passi:?}"));
    passi.truncate(fine + 1);
    gw.stop().await;
    for (n, passo) in passi.iter().enumerate() {
        let (gw, g) = gateway().await;
        g.fallisci(n, false);
        let r = common::post(&gw.url("/pdd/PA"), richiesta.clone().into_bytes(), &[]).await;
        assert!(
            r.status >= 500 && r.body.contains("EGOV_IT_300"),
            "failing {} ({n}): {} {}",
            passo,
            r.status,
            r.body
        );
        niente(gw.gw.store.as_ref(), &codice, &id).await;
        accettata(
            &gw,
            &richiesta,
            &codice,
            &format!("the resend after a failed {passo}"),
        )
        .await;
        assert_eq!(gw.gw.store.outbox().await.unwrap().len(), 1);
        gw.stop().await;
    }
}

/// Every write and flush failing for a while (a disk that is full), then working again: the
/// gateway refuses cleanly meanwhile, says so on /health, and serves again by itself.
#[tokio::test]
async fn a_store_failing_for_a_while_is_refused_cleanly_and_served_again_after() {
    let (gw, g) = gateway().await;
    g.fallisci(0, true);
    let (richiesta, codice) = cv();
    let r = common::post(&gw.url("/pdd/PA"), richiesta.clone().into_bytes(), &[]).await;
    assert!(
        r.status >= 500 && r.body.contains("EGOV_IT_300"),
        "{} {}",
        r.status,
        r.body
    );
    let addr = gw.addr;
    let salute = || async move {
        tokio::task::spawn_blocking(move || common::http(addr, "GET", "/health", &[], b""))
            .await
            .unwrap()
            .unwrap()
    };
    let (s, h) = salute().await;
    assert_eq!(s, 503, "{h}");
    assert!(h.contains("No space left on device"), "{h}");
    g.ripara();
    let (s, h) = salute().await;
    assert_eq!(s, 200, "{h}");
    accettata(&gw, &richiesta, &codice, "served again").await;
    gw.stop().await;
}

/// `richiesta` sent over a connection of its own, its exchange held in `commit_exchange_with`
/// for `per`, and the connection closed while it waits there: a partner gone mid-exchange. Its
/// Identificatore.
async fn lasciata_a_meta(
    gw: &common::Running,
    g: &Guasti,
    richiesta: &str,
    per: std::time::Duration,
) -> String {
    use tokio::io::AsyncWriteExt;
    g.sospendi("commit_exchange_with", per);
    let mut tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let testa = format!(
        "POST /pdd/PA HTTP/1.1\r\nHost: {}\r\nContent-Type: text/xml; charset=utf-8\r\nSOAPAction: \"\"\r\nContent-Length: {}\r\n\r\n",
        gw.addr,
        richiesta.len()
    );
    tcp.write_all(testa.as_bytes()).await.unwrap();
    tcp.write_all(richiesta.as_bytes()).await.unwrap();
    common::eventually("the exchange waits on the store", async || {
        g.in_pausa() == 1
    })
    .await;
    drop(tcp);
    common::text_of(richiesta, "Identificatore")
        .unwrap()
        .to_string()
}

/// Waits until the exchange of `id` has ended, its claim settled.
async fn finita(gw: &common::Running, g: &Guasti, id: &str) {
    common::eventually("the exchange gone on to its end", async || {
        g.in_pausa() == 0
            && matches!(
                gw.gw.store.claim(id, 0, None).await,
                Ok(pdd::store::Claim::Duplicate(d)) if d.seq != 0
            )
    })
    .await;
}

/// A partner that goes away while its message is being processed (its connection closed while
/// the exchange waits on the store) does not leave the message's Identificatore in flight: the
/// exchange goes on to its end, and the partner's resend is answered as a duplicate of an
/// accepted exchange (EGOV_IT_110), not refused as "in elaborazione" for the ten minutes after
/// which a claim counts as abandoned.
#[tokio::test]
async fn a_partner_gone_mid_exchange_leaves_its_message_processed_not_in_flight() {
    let (gw, g) = gateway().await;
    let (richiesta, codice) = cv();
    let id = lasciata_a_meta(&gw, &g, &richiesta, std::time::Duration::from_millis(800)).await;
    finita(&gw, &g, &id).await;
    assert!(gw
        .gw
        .store
        .modulo(Tipo::Candidatura, &codice)
        .await
        .unwrap()
        .is_some());
    let r = common::post(&gw.url("/pdd/PA"), richiesta.into_bytes(), &[]).await;
    assert!(!r.body.contains("in elaborazione"), "{}", r.body);
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains(r#"codiceEccezione="EGOV_IT_110""#),
        "{}",
        r.body
    );
    gw.stop().await;
}

/// The exchange a partner left behind still counts against its limit until it ends: with one
/// exchange at a time allowed, a second message while the first is still being processed is
/// refused (503, troppi scambi in corso), however early the partner closed the first's
/// connection; once the first ends, it is accepted.
#[tokio::test]
async fn an_exchange_its_partner_left_keeps_its_place_until_it_ends() {
    let mut config = ncn();
    config.limits.partner_concurrency = 1;
    let (gw, g) = gateway_con(config).await;
    let (prima, codice) = cv();
    let id = lasciata_a_meta(&gw, &g, &prima, std::time::Duration::from_millis(1500)).await;
    // The server has the time to see the partner gone.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(g.in_pausa(), 1, "the first exchange is still in progress");
    let (seconda, _) = cv();
    let r = common::post(&gw.url("/pdd/PA"), seconda.clone().into_bytes(), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("troppi scambi in corso"), "{}", r.body);
    finita(&gw, &g, &id).await;
    accettata(&gw, &seconda, &codice, "once the first ended").await;
    gw.stop().await;
}
