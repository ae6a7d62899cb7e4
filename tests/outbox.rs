//! The NCN's outbox over real servers in one process: a redelivery absorbed by the receiver's
//! duplicate filter, a refusal kept for the operator and queued again, a forward dropped when
//! its modulo expires before delivery.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use common::{start, start_with_clock, Req};
use pdd::clock::FixedClock;
use pdd::config::Config;
use pdd::registry::Soggetto;
use pdd::rete::Ruolo;
use pdd::store::{Direction, Forward, ForwardState, Outcome, Write};

fn ncn(lazio_url: &str) -> Config {
    let mut c = Config {
        role: Ruolo::Ncn,
        ..Default::default()
    };
    c.outbox.retry_min_secs = 1;
    c.outbox.retry_max_secs = 1;
    let mut s = Soggetto::new("SPC", "LAZIO");
    s.url = Some(lazio_url.to_string());
    c.registry.soggetti.push(s);
    c
}

fn lazio() -> Config {
    let mut c = Config {
        role: Ruolo::Nr,
        ..Default::default()
    };
    c.soggetto.nome = "LAZIO".into();
    c
}

/// EMILIA's national-scope Candidatura 2.0 (the sample) to the NCN.
fn cv_nazionale() -> String {
    Req::invio(common::invio_candidatura(&common::example(
        "moduli/candidatura-2.0.xml",
    )))
    .xml()
}

/// `richiesta` posted to the NCN, which must accept it (Tipo_Risposta OK).
async fn accettata(ncn: &common::Running, richiesta: String) {
    let r = common::post(&ncn.url("/pdd/PA"), richiesta.into_bytes(), &[]).await;
    assert_eq!(
        common::text_of(&r.body, "Tipo_Risposta"),
        Some("OK"),
        "{}",
        r.body
    );
}

/// The first outbox entry, once it is refused.
async fn respinto(ncn: &common::Running) -> Forward {
    eventually("refused", async || {
        ncn.gw
            .outbox
            .elenco()
            .await
            .unwrap()
            .first()
            .is_some_and(|i| i.stato == ForwardState::Refused)
    })
    .await;
    ncn.gw.outbox.elenco().await.unwrap().remove(0)
}

#[tokio::test]
async fn a_redelivery_is_absorbed_by_the_receivers_duplicate_filter() {
    let lazio = start(lazio()).await;
    let ncn = start(ncn(&lazio.url("/pdd/PA"))).await;
    let r = common::post(&ncn.url("/pdd/PA"), cv_nazionale().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("inoltrata a SPC/LAZIO"), "{}", r.body);
    eventually("delivered", async || {
        ncn.gw.outbox.elenco().await.unwrap().is_empty()
    })
    .await;
    // The forward as the NCN sent it.
    let sent = ncn
        .gw
        .store
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.direction == Direction::Out)
        .unwrap();
    assert_eq!(sent.outcome, Outcome::Ok);
    let id = sent.request_id.clone().unwrap();
    let raw = ncn.gw.store.exchange(sent.seq).await.unwrap().unwrap();
    let request = String::from_utf8(raw.request).unwrap();
    let ora = common::text_of(&request, "OraRegistrazione").unwrap();
    let ora = chrono::NaiveDateTime::parse_from_str(ora, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_local_timezone(chrono::Local)
        .unwrap();
    let body = &request[request.find("<types:invioCandidatura").unwrap()
        ..request.find("</types:invioCandidatura>").unwrap() + "</types:invioCandidatura>".len()];
    // As if its answer had been lost: the same forward, queued again.
    let again = Forward {
        seq: ncn.gw.store.next_seq().await.unwrap(),
        creato: ora.fixed_offset(),
        destinatario: "SPC/LAZIO".into(),
        servizio: "ClicLavoro".into(),
        azione: "InvioCandidatura".into(),
        id: id.clone(),
        ora: ora.fixed_offset(),
        corpo: body.to_string(),
        kind: pdd::modulo::Tipo::Candidatura,
        codice: "x".into(),
        invio: false,
        // An earlier attempt whose answer never came.
        tentativi: 1,
        prossimo_ms: 0,
        stato: ForwardState::Pending,
        errore: None,
        causa: None,
    };
    ncn.gw
        .store
        .apply(vec![Write::Forward(again.clone())])
        .await
        .unwrap();
    ncn.gw.outbox_notify.notify_one();
    eventually("the redelivery counts as delivered", async || {
        ncn.gw.outbox.elenco().await.unwrap().is_empty()
    })
    .await;
    // LAZIO processed the modulo once and refused the repeat as a duplicate.
    let seen: Vec<_> = lazio
        .gw
        .store
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.request_id.as_deref() == Some(id.as_str()))
        .map(|e| e.outcome)
        .collect();
    assert_eq!(seen, vec![Outcome::Duplicato, Outcome::Ok]);
    // An attempt never counted (the NCN died before learning its outcome) but recorded before
    // it was sent: the receiver's duplicate answer means it got through.
    let non_contato = Forward {
        seq: ncn.gw.store.next_seq().await.unwrap(),
        tentativi: 0,
        ..again.clone()
    };
    ncn.gw
        .store
        .apply(vec![Write::Forward(non_contato)])
        .await
        .unwrap();
    ncn.gw.outbox_notify.notify_one();
    eventually("the uncounted redelivery counts as delivered", async || {
        ncn.gw.outbox.elenco().await.unwrap().is_empty()
    })
    .await;
    // The same answer to a first attempt of an Identificatore never sent from here means the
    // receiver refuses the Identificatore itself: kept as refused, for the operator.
    let estraneo = format!("EMILIA_EMILIASPCoopIT_0000042_{}", &id[id.len() - 16..]);
    let first = Forward {
        seq: ncn.gw.store.next_seq().await.unwrap(),
        tentativi: 0,
        id: estraneo,
        ..again
    };
    ncn.gw
        .store
        .apply(vec![Write::Forward(first)])
        .await
        .unwrap();
    ncn.gw.outbox_notify.notify_one();
    let i = &respinto(&ncn).await;
    assert!(
        i.errore.as_deref().unwrap().contains("EGOV_IT_110"),
        "{i:?}"
    );
}

#[tokio::test]
async fn a_refused_forward_is_kept_and_can_be_queued_again() {
    // LAZIO accepts only moduli 2.0 here: the NCN's Rev.038 CV gets a business KO.
    let mut l = lazio();
    l.cliclavoro.versione = pdd::config::VersioneModuli::V2_0;
    let lazio = start(l).await;
    let ncn = start(ncn(&lazio.url("/pdd/PA"))).await;
    let mut modulo = common::example("moduli/candidatura-rev038.xml");
    let oggi = chrono::Local::now().date_naive();
    modulo = modulo.replace("2027-01-08", &(oggi + chrono::Days::new(30)).to_string());
    accettata(&ncn, Req::invio(common::invio_candidatura(&modulo)).xml()).await;
    let i = &respinto(&ncn).await;
    assert!(i.errore.as_deref().unwrap().contains("non valida"), "{i:?}");
    // Refused entries are not retried by themselves.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ncn.gw.outbox.elenco().await.unwrap()[0].tentativi, 1);
    let first_id = ncn.gw.outbox.elenco().await.unwrap()[0].id.clone();
    assert_eq!(ncn.gw.outbox.riprova(None).await.unwrap(), 1);
    // Tried again under a new Identificatore (the old one is in LAZIO's duplicate filter), and
    // refused again on its merits.
    eventually("tried again", async || {
        ncn.gw
            .outbox
            .elenco()
            .await
            .unwrap()
            .first()
            .is_some_and(|i| i.tentativi == 2)
    })
    .await;
    let i = &ncn.gw.outbox.elenco().await.unwrap()[0];
    assert_ne!(i.id, first_id);
    assert_eq!(i.stato, ForwardState::Refused);
}

#[tokio::test]
async fn a_forward_of_an_expired_modulo_is_dropped() {
    // LAZIO is registered but nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pdd/PA", dead.local_addr().unwrap());
    drop(dead);
    let clock = Arc::new(FixedClock::new(chrono::Local::now().fixed_offset()));
    let ncn = start_with_clock(ncn(&url), clock.clone()).await;
    accettata(&ncn, cv_nazionale()).await;
    eventually("a failed attempt", async || {
        ncn.gw
            .outbox
            .elenco()
            .await
            .unwrap()
            .first()
            .is_some_and(|i| i.tentativi > 0 && i.errore.is_some())
    })
    .await;
    let i = &ncn.gw.outbox.elenco().await.unwrap()[0];
    assert_eq!(i.stato, ForwardState::Pending);
    assert!(
        i.errore.as_deref().unwrap().contains("EGOV_IT_300"),
        "{i:?}"
    );
    // 46 days later the CV is deactivated, and its forward is no longer due.
    clock.advance(chrono::Duration::days(46));
    assert_eq!(ncn.gw.scadenze.disattiva_scaduti().await.unwrap(), 1);
    assert_eq!(
        ncn.gw.scadenze.disattiva_scaduti().await.unwrap(),
        0,
        "idempotent"
    );
    ncn.gw.outbox_notify.notify_one();
    eventually("dropped", async || {
        ncn.gw.outbox.elenco().await.unwrap().is_empty()
    })
    .await;
}

#[tokio::test]
async fn a_forward_that_waited_past_the_receivers_window_goes_as_a_new_message() {
    // LAZIO's clock runs 6 days ahead: to it, the NCN's buste are older than its 5-day window.
    let now = chrono::Local::now().fixed_offset();
    let ahead = Arc::new(FixedClock::new(now + chrono::Duration::days(6)));
    let lazio = start_with_clock(lazio(), ahead).await;
    let clock = Arc::new(FixedClock::new(now));
    let ncn = start_with_clock(ncn(&lazio.url("/pdd/PA")), clock.clone()).await;
    accettata(&ncn, cv_nazionale()).await;
    eventually("refused as expired", async || {
        ncn.gw
            .outbox
            .elenco()
            .await
            .unwrap()
            .first()
            .is_some_and(|i| {
                i.errore
                    .as_deref()
                    .is_some_and(|e| e.starts_with("EGOV_IT_301"))
            })
    })
    .await;
    let first = ncn.gw.outbox.elenco().await.unwrap()[0].clone();
    assert_eq!(
        first.stato,
        ForwardState::Pending,
        "expiry is not a refusal"
    );
    // Six days later at the NCN too: the renewed busta is fresh for LAZIO.
    clock.advance(chrono::Duration::days(6));
    // The test clock stands still: move it past each retry wait.
    eventually("delivered", async || {
        clock.advance(chrono::Duration::seconds(2));
        ncn.gw.outbox_notify.notify_one();
        ncn.gw.outbox.elenco().await.unwrap().is_empty()
    })
    .await;
    let delivered: Vec<_> = lazio
        .gw
        .store
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.outcome == Outcome::Ok)
        .filter_map(|e| e.request_id)
        .collect();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    // Not under the Identificatore LAZIO refused as expired.
    let refused = ncn
        .gw
        .store
        .recent(20)
        .await
        .unwrap()
        .into_iter()
        .rfind(|e| e.direction == Direction::Out)
        .unwrap();
    assert_eq!(refused.outcome, Outcome::ErroreBusta);
    assert_ne!(refused.request_id.as_ref(), Some(&delivered[0]));
    assert!(
        delivered[0].starts_with("MinisteroLavoro_"),
        "{}",
        delivered[0]
    );
    assert_ne!(
        first.id,
        refused.request_id.unwrap(),
        "renewed at the first expiry"
    );
}
