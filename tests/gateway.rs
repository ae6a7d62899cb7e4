//! The porta applicativa and porta delegata over the real server on loopback: ClicLavoro
//! happy paths, duplicates across restarts, identifiers, expiry, oneway, sbustamento to a
//! backend, two gateways talking, limits and shutdown.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{have, intestazione, invio_candidatura, post, start, text_of, xmllint, Peer, Req};
use pdd::clock::FixedClock;
use pdd::config::Config;
use pdd::egov::{Profilo, FAULT_PROCESSAMENTO, FAULT_VALIDAZIONE};
use pdd::registry::{Azione, Servizio, Soggetto};
use pdd::store::Outcome;

fn modulo() -> String {
    common::example("moduli/candidatura-2.0.xml")
}

#[tokio::test]
async fn cliclavoro_candidatura_round_trip() {
    let gw = start(Config::default()).await;
    let req = Req::invio(invio_candidatura(&modulo()));
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The response busta of busta-egov.md §2.3.
    assert_eq!(
        text_of(&r.body, "RiferimentoMessaggio"),
        Some(req.id.as_str())
    );
    let resp_id = text_of(&r.body, "Identificatore").unwrap();
    assert!(
        resp_id.starts_with("MinisteroLavoro_MinisteroLavoroSPCoopIT_"),
        "{resp_id}"
    );
    assert_ne!(resp_id, req.id);
    let h = intestazione(&r.body).unwrap();
    assert!(
        h.contains("<eGov_IT:Mittente><eGov_IT:IdentificativoParte tipo=\"SPC\">MinisteroLavoro<")
    );
    assert!(h.contains("<eGov_IT:Destinatario><eGov_IT:IdentificativoParte tipo=\"SPC\">EMILIA<"));
    assert!(h.contains("<eGov_IT:Trasmissione><eGov_IT:Origine><eGov_IT:IdentificativoParte tipo=\"SPC\">MinisteroLavoro<"));
    assert!(!h.contains("ListaEccezioni"));
    assert_eq!(text_of(&r.body, "Tipo_Risposta"), Some("OK"));
    assert!(text_of(&r.body, "Descr_Esito")
        .unwrap()
        .contains("SILBO26200000000000000042"));
    // The response header is valid against the project's busta schema and the official Busta.xsd.
    if have(Peer::Xmllint) {
        let own = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("xsd/busta-egov-1.1.xsd");
        xmllint(h, &own).expect("response busta valid against xsd/busta-egov-1.1.xsd");
        if have(Peer::Xsd) {
            xmllint(h, &common::xsd().join("Busta.xsd"))
                .expect("response busta valid against Busta.xsd");
        }
    }
    // Stored: the modulo, and the exchange with both messages.
    let m = gw
        .gw
        .store
        .modulo(pdd::modulo::Tipo::Candidatura, "SILBO26200000000000000042")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.mittente.as_deref(), Some("SPC/EMILIA"));
    assert!(m.xml.contains("BNCLRA85M41F205C"));
    let ex = gw.gw.store.exchange_by_id(&req.id).await.unwrap().unwrap();
    assert_eq!(ex.outcome, Outcome::Ok);
    assert_eq!(ex.response_id.as_deref(), Some(resp_id));
    assert_eq!(String::from_utf8(ex.response).unwrap(), r.body);
    assert_eq!(String::from_utf8(ex.request).unwrap(), req.xml());
}

#[tokio::test]
async fn cliclavoro_business_ko_is_not_a_busta_error() {
    let gw = start(Config::default()).await;
    for (body, why) in [
        (invio_candidatura("<non-xml"), "non è XML ben formato"),
        (
            invio_candidatura(r#"<v:Vacancy xmlns:v="http://servizi.lavoro.gov.it/vacancy"/>"#),
            "il modulo è una Vacancy",
        ),
        (
            invio_candidatura(r#"<c:Candidatura xmlns:c="http://servizi.lavoro.gov.it/candidatura"><c:DatiSistema/></c:Candidatura>"#),
            "Candidatura/Lavoratore: manca l'elemento obbligatorio Lavoratore [XSD_MANCANTE]",
        ),
        (
            invio_candidatura(&modulo().replace("BNCLRA85M41F205C", "BNCLRA85M41F205D")),
            "codice fiscale 'BNCLRA85M41F205D' non valido: carattere di controllo errato (atteso C) [CF_CONTROLLO]",
        ),
        (
            r#"<t:invioVacancy xmlns:t="http://servizi.lavoro.gov.it/cliclavoro/types"><t:VacancyXML>x</t:VacancyXML></t:invioVacancy>"#.to_string(),
            "atteso l'elemento",
        ),
    ] {
        let req = Req::new("LAZIO", "MinisteroLavoro", "ClicLavoro", Some("InvioCandidatura"), body);
        let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(text_of(&r.body, "Tipo_Risposta"), Some("KO"));
        let descr = text_of(&r.body, "Descr_Esito").unwrap();
        assert!(descr.contains(why), "{descr}");
        assert!(!r.body.contains("ListaEccezioni"));
    }
}

#[tokio::test]
async fn duplicates_refused_across_restart_and_the_service_runs_once() {
    let gw = start(Config::default()).await;
    let req = Req::invio(invio_candidatura(&modulo()));
    let first = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(first.status, 200);
    let dup = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(dup.status, 500);
    assert!(dup.body.contains(
        r#"codiceEccezione="EGOV_IT_110" rilevanza="GRAVE" posizione="Messaggio/Identificatore""#
    ));
    let dir = gw.stop().await;

    let gw = common::start_in(Config::default(), Arc::new(pdd::clock::SystemClock), dir).await;
    let again = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(again.status, 500, "{}", again.body);
    assert!(again.body.contains("EGOV_IT_110"));
    let list = gw.gw.store.recent(10).await.unwrap();
    let outcomes: Vec<Outcome> = list.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes,
        vec![Outcome::Duplicato, Outcome::Duplicato, Outcome::Ok]
    );
}

#[tokio::test]
async fn identifiers_never_repeat_across_a_restart_in_the_same_minute() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:15:20+01:00").unwrap();
    let clock = Arc::new(FixedClock::new(at));
    let gw = common::start_with_clock(Config::default(), clock.clone()).await;
    let mut ids = std::collections::HashSet::new();
    let send = |url: String, n: u32| async move {
        let mut out = Vec::new();
        for i in 0..n {
            let mut req = Req::invio(invio_candidatura(&modulo()));
            req.ora = "2026-03-02T10:15:00".into();
            req.id = format!(
                "EMILIA_EMILIASPCoopIT_{:07}_2026-03-02_10:15",
                100 + i + n * 10
            );
            let r = post(&url, req.xml().into_bytes(), &[]).await;
            assert_eq!(r.status, 200, "{}", r.body);
            out.push(text_of(&r.body, "Identificatore").unwrap().to_string());
        }
        out
    };
    for id in send(gw.url("/pdd/PA"), 5).await {
        assert!(ids.insert(id));
    }
    let dir = gw.stop().await;
    let gw = common::start_in(Config::default(), clock, dir).await;
    for id in send(gw.url("/pdd/PA"), 6).await {
        assert!(id.ends_with("_2026-03-02_10:15"), "{id}");
        assert!(ids.insert(id.clone()), "{id} issued twice");
    }
}

#[tokio::test]
async fn expired_buste_get_301() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-10T12:00:00+01:00").unwrap();
    let gw = common::start_with_clock(Config::default(), Arc::new(FixedClock::new(at))).await;
    let body = invio_candidatura(&modulo());
    // OraRegistrazione more than 5 days old.
    let mut old = Req::invio(body.clone());
    old.ora = "2026-03-05T11:59:00".into();
    old.id = "EMILIA_EMILIASPCoopIT_0000001_2026-03-10_11:59".into();
    // The id's date more than 5 days old.
    let mut old_id = Req::invio(body.clone());
    old_id.ora = "2026-03-10T11:59:00".into();
    old_id.id = "EMILIA_EMILIASPCoopIT_0000002_2026-03-05_11:50".into();
    // A Scadenza already past, even though the busta is recent.
    let mut scaduta = Req::invio(body.clone());
    scaduta.ora = "2026-03-10T11:59:00".into();
    scaduta.id = "EMILIA_EMILIASPCoopIT_0000003_2026-03-10_11:59".into();
    scaduta.scadenza = Some("2026-03-10T11:59:30".into());
    // Recent, within the window: accepted.
    let mut fresh = Req::invio(body);
    fresh.ora = "2026-03-05T12:01:00".into();
    fresh.id = "EMILIA_EMILIASPCoopIT_0000004_2026-03-05_12:01".into();
    for (req, posizione) in [
        (&old, Some("Messaggio/OraRegistrazione")),
        (&old_id, Some("Messaggio/Identificatore")),
        (&scaduta, Some("Messaggio/Scadenza")),
        (&fresh, None),
    ] {
        let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
        match posizione {
            Some(p) => {
                assert_eq!(r.status, 500, "{}", r.body);
                let expect =
                    format!(r#"codiceEccezione="EGOV_IT_301" rilevanza="GRAVE" posizione="{p}""#);
                assert!(r.body.contains(&expect), "{}", r.body);
            }
            None => assert_eq!(r.status, 200, "{}", r.body),
        }
    }
}

/// A oneway echo service offered by the Ministry, for partners on either profile.
fn oneway_config() -> Config {
    let mut c = Config::default();
    c.registry.servizi.push(Servizio {
        tipo: "SPC".into(),
        nome: "Notifiche".into(),
        erogatore: "SPC/MinisteroLavoro".into(),
        profilo: Profilo::OneWay,
        azione_obbligatoria: false,
        azioni: vec![Azione {
            nome: "notifica".into(),
            profilo: None,
            correlata: None,
        }],
        fruitori: vec![],
        filtro_duplicati: true,
        backend: None,
        handler: Some("echo".into()),
        correlato: None,
    });
    let mut lazio = Soggetto::new("SPC", "LAZIO");
    lazio.profilo = pdd::egov::ProfiloGestione::EGov11;
    c.registry.soggetti.push(lazio);
    c
}

#[tokio::test]
async fn oneway_answers_200_empty_and_absorbs_or_refuses_duplicates_by_profile() {
    let gw = start(oneway_config()).await;
    // EMILIA speaks Linee Guida 1.1 (the default): a repeated oneway is an error.
    let mut req = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "Notifiche",
        Some("notifica"),
        "<n>1</n>".into(),
    );
    req.profilo = "EGOV_IT_MessaggioSingoloOneWay";
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!((r.status, r.body.as_str()), (200, ""));
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 500);
    assert!(r.body.contains("EGOV_IT_110"));
    // LAZIO speaks eGov 1.1: the repeat is absorbed silently.
    let mut req = Req::new(
        "LAZIO",
        "MinisteroLavoro",
        "Notifiche",
        Some("notifica"),
        "<n>2</n>".into(),
    );
    req.profilo = "EGOV_IT_MessaggioSingoloOneWay";
    for _ in 0..2 {
        let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
        assert_eq!((r.status, r.body.as_str()), (200, ""));
    }
    let outcomes: Vec<Outcome> = gw
        .gw
        .store
        .recent(2)
        .await
        .unwrap()
        .iter()
        .map(|e| e.outcome)
        .collect();
    assert_eq!(outcomes, vec![Outcome::Duplicato, Outcome::Ok]);
}

/// What a backend received: headers and body of each request.
type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>;

/// A backend for sbustamento tests: records what it receives, answers with a SOAP body.
struct Backend {
    url: String,
    seen: Seen,
    calls: Arc<AtomicUsize>,
}

async fn backend(delay: Duration, answer: &'static str) -> Backend {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (s2, c2) = (seen.clone(), calls.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (s3, c3) = (s2.clone(), c2.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (s4, c4) = (s3.clone(), c3.clone());
                        async move {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            s4.lock()
                                .unwrap()
                                .push((headers, String::from_utf8_lossy(&body).into_owned()));
                            c4.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(delay).await;
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .header("Content-Type", "text/xml")
                                    .body(Full::new(bytes::Bytes::from(answer)))
                                    .unwrap(),
                            )
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Backend {
        url: format!("http://{addr}/backend"),
        seen,
        calls,
    }
}

const BACKEND_ANSWER: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:r="urn:risposta"><s:Body><r:esito>fatto</r:esito></s:Body></s:Envelope>"#;

fn backend_config(url: &str) -> Config {
    let mut c = Config::default();
    c.registry.servizi.push(Servizio {
        tipo: "SPC".into(),
        nome: "Anagrafe".into(),
        erogatore: "SPC/MinisteroLavoro".into(),
        profilo: Profilo::Sincrono,
        azione_obbligatoria: false,
        azioni: vec![],
        fruitori: vec![],
        filtro_duplicati: true,
        backend: Some(url.to_string()),
        handler: None,
        correlato: None,
    });
    c
}

#[tokio::test]
async fn sbustamento_to_a_backend() {
    let be = backend(Duration::ZERO, BACKEND_ANSWER).await;
    let gw = start(backend_config(&be.url)).await;
    let req = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "Anagrafe",
        Some("cerca"),
        "<q:cerca xmlns:q=\"urn:q\">x</q:cerca>".into(),
    );
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The backend's answer is wrapped in our response busta, its bindings kept.
    assert!(r.body.contains("<r:esito>fatto</r:esito>"));
    assert!(r.body.contains("xmlns:r=\"urn:risposta\""));
    assert_eq!(
        text_of(&r.body, "RiferimentoMessaggio"),
        Some(req.id.as_str())
    );
    pdd::soap::Envelope::parse(r.body.as_bytes(), pdd::xml::Limits::default())
        .expect("well-formed answer");
    // The backend got the message without the busta, and the busta in headers.
    let seen = be.seen.lock().unwrap();
    let (headers, body) = &seen[0];
    assert!(!body.contains("Intestazione"), "{body}");
    assert!(body.contains("<q:cerca xmlns:q=\"urn:q\">x</q:cerca>"));
    let h = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(h("x-pdd-mittente"), Some("SPC/EMILIA"));
    assert_eq!(h("x-pdd-servizio"), Some("SPC/Anagrafe"));
    assert_eq!(h("x-pdd-azione"), Some("cerca"));
    assert_eq!(h("x-pdd-identificatore"), Some(req.id.as_str()));
}

#[tokio::test]
async fn backend_down_is_a_processing_error_and_can_be_retried() {
    // Nothing listens on this port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/x", dead.local_addr().unwrap());
    drop(dead);
    let gw = start(backend_config(&url)).await;
    let req = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "Anagrafe",
        Some("cerca"),
        "<q/>".into(),
    );
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(text_of(&r.body, "faultstring"), Some(FAULT_PROCESSAMENTO));
    assert_eq!(text_of(&r.body, "faultcode"), Some("soap:Server"));
    // PD_UR-6.3: a processing error carries no ListaEccezioni; the busta still answers.
    assert!(!r.body.contains("ListaEccezioni"));
    assert_eq!(
        text_of(&r.body, "RiferimentoMessaggio"),
        Some(req.id.as_str())
    );
    let ex = gw.gw.store.exchange_by_id(&req.id).await.unwrap().unwrap();
    assert_eq!(ex.outcome, Outcome::ErroreProcessamento);
    // The service never ran: the same busta may be sent again (not a duplicate).
    let r = post(&gw.url("/pdd/PA"), req.xml().into_bytes(), &[]).await;
    assert_eq!(text_of(&r.body, "faultstring"), Some(FAULT_PROCESSAMENTO));
}

/// EMILIA's gateway, whose registry knows the Ministry's porta applicativa.
fn emilia(ministry_pa: &str) -> Config {
    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(ministry_pa.to_string());
    c.registry.soggetti.push(m);
    c
}

#[tokio::test]
async fn two_gateways_porta_delegata_to_porta_applicativa() {
    let ministry = start(Config::default()).await;
    let region = start(emilia(&ministry.url("/pdd/PA"))).await;
    let sil = common::example("invio-candidatura-sil.xml");
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioCandidatura"),
        sil.into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // The local system gets the Ministry's answer without the busta, and the busta in headers.
    assert!(!r.body.contains("Intestazione"));
    assert_eq!(text_of(&r.body, "Tipo_Risposta"), Some("OK"));
    let h = |k: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    let req_id = h("x-pdd-riferimentomessaggio").expect("request id header");
    assert!(req_id.starts_with("EMILIA_EMILIASPCoopIT_"), "{req_id}");
    let resp_id = h("x-pdd-identificatore").unwrap();
    assert!(resp_id.starts_with("MinisteroLavoro_MinisteroLavoroSPCoopIT_"));
    // Both sides traced the exchange.
    let out = region
        .gw
        .store
        .exchange_by_id(&req_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.direction, pdd::store::Direction::Out);
    assert_eq!(out.outcome, Outcome::Ok);
    assert_eq!(out.response_id.as_deref(), Some(resp_id.as_str()));
    let inn = ministry
        .gw
        .store
        .exchange_by_id(&req_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(inn.direction, pdd::store::Direction::In);
    assert_eq!(inn.mittente.as_deref(), Some("SPC/EMILIA"));
    // What EMILIA sent is what the Ministry received.
    assert_eq!(out.request, inn.request);
}

#[tokio::test]
async fn remote_error_busta_becomes_messaggio_di_errore_applicativo() {
    let ministry = start(Config::default()).await;
    let mut cfg = emilia(&ministry.url("/pdd/PA"));
    // EMILIA believes the service has an azione the Ministry does not offer.
    let (_, mut servizi) = pdd::registry::demo(&Soggetto::new("SPC", "EMILIA"));
    servizi[0].azioni.push(Azione {
        nome: "InvioBozza".into(),
        profilo: None,
        correlata: None,
    });
    cfg.registry.servizi = servizi;
    let region = start(cfg).await;
    let sil = common::example("invio-candidatura-sil.xml");
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioBozza"),
        sil.into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(
        r.body.contains(r#"codiceEccezione="EGOV_IT_106""#),
        "{}",
        r.body
    );
    assert_eq!(
        text_of(&r.body, "IdentificativoFunzione"),
        Some("SbustamentoRisposte")
    );
    assert_eq!(
        text_of(&r.body, "IdentificativoPorta"),
        Some("EMILIASPCoopIT")
    );
    if have(Peer::Xsd) && have(Peer::Xmllint) {
        let s = r
            .body
            .find("<eGov_IT_Ecc:MessaggioDiErroreApplicativo")
            .unwrap();
        let e = r
            .body
            .find("</eGov_IT_Ecc:MessaggioDiErroreApplicativo>")
            .unwrap();
        let detail = &r.body[s..e + "</eGov_IT_Ecc:MessaggioDiErroreApplicativo>".len()];
        xmllint(detail, &common::xsd().join("EccezioneCNIPA.xsd"))
            .expect("detail valid against EccezioneCNIPA.xsd");
    }
}

#[tokio::test]
async fn porta_delegata_partner_down_or_unknown() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/pdd/PA", dead.local_addr().unwrap());
    drop(dead);
    let region = start(emilia(&url)).await;
    let sil = common::example("invio-candidatura-sil.xml");
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioCandidatura"),
        sil.clone().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(
        text_of(&r.body, "IdentificativoFunzione"),
        Some("InoltroBuste")
    );
    assert!(r.body.contains("EccezioneProcessamento"));
    // An unknown destinatario is refused before anything is sent.
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioCandidatura"),
        sil.into_bytes(),
        &[("X-PDD-Destinatario", "SPC/Nessuno")],
    )
    .await;
    assert_eq!(r.status, 500);
    assert!(
        r.body.contains(r#"codiceEccezione="EGOV_IT_102""#),
        "{}",
        r.body
    );
    assert_eq!(
        text_of(&r.body, "IdentificativoFunzione"),
        Some("Imbustamento")
    );
}

#[tokio::test]
async fn unreadable_and_wrong_messages() {
    let gw = start(Config::default()).await;
    for body in [
        &b"not xml at all"[..],
        b"",
        b"<a/>",
        br#"<!DOCTYPE x [<!ENTITY e "e">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>"#,
        br#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x/></s:Body></s:Envelope>"#,
    ] {
        let r = post(&gw.url("/pdd/PA"), body.to_vec(), &[]).await;
        assert_eq!(r.status, 500);
        assert_eq!(text_of(&r.body, "faultstring"), Some(FAULT_VALIDAZIONE), "{}", r.body);
        assert!(!r.body.contains("Intestazione"));
    }
    let soap12 =
        br#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
    let r = post(&gw.url("/pdd/PA"), soap12.to_vec(), &[]).await;
    assert_eq!(r.status, 500);
    assert_eq!(text_of(&r.body, "faultcode"), Some("soap:VersionMismatch"));
    let r = post(&gw.url("/health"), vec![], &[]).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn body_limit() {
    let mut c = Config::default();
    c.limits.max_body_bytes = 4096;
    let gw = start(c).await;
    let big = format!("<x>{}</x>", "a".repeat(10_000));
    let r = post(&gw.url("/pdd/PA"), big.into_bytes(), &[]).await;
    assert_eq!(r.status, 413);
    assert!(r.body.contains("4096"));
}

#[tokio::test]
async fn shutdown_finishes_in_flight_exchanges() {
    let be = backend(Duration::from_millis(800), BACKEND_ANSWER).await;
    let gw = start(backend_config(&be.url)).await;
    let req = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "Anagrafe",
        Some("cerca"),
        "<q/>".into(),
    );
    let url = gw.url("/pdd/PA");
    let body = req.xml().into_bytes();
    let inflight = tokio::spawn(async move { post(&url, body, &[]).await });
    // Wait until the backend holds the request, then stop the gateway.
    common::eventually("the backend holds the request", async || {
        be.calls.load(Ordering::SeqCst) > 0
    })
    .await;
    assert_eq!(
        be.calls.load(Ordering::SeqCst),
        1,
        "the request never reached the backend"
    );
    let store = gw.gw.store.clone();
    let stopping = tokio::spawn(gw.stop());
    let r = inflight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    stopping.await.unwrap();
    assert_eq!(
        store
            .exchange_by_id(&req.id)
            .await
            .unwrap()
            .unwrap()
            .outcome,
        Outcome::Ok
    );
}

#[tokio::test]
async fn health() {
    let gw = start(Config::default()).await;
    let c = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let r = c.get(gw.url("/health").parse().unwrap()).await.unwrap();
    assert_eq!(r.status(), 200);
}

/// With signing on, an answer that cannot be signed is never sent unsigned: the partner gets a
/// processing Fault, the exchange is recorded as such, and the operator a diagnostic.
#[tokio::test]
async fn an_answer_that_cannot_be_signed_is_a_fault_not_sent_unsigned() {
    let dir = common::TempDir::new("firma-chiusa");
    let mut config = Config {
        data: dir.0.join("data"),
        ..Config::default()
    };
    let registry = config.build_registry().unwrap();
    // Signing on with no key to sign with (the configuration check refuses this; a key that
    // disappears or fails at run time is the case it stands for).
    config.wssec.firma = Some(true);
    let store = pdd::store::SledStore::open(&config.data).unwrap();
    let gw = Arc::new(
        pdd::server::gateway(
            config,
            registry,
            Arc::new(store),
            Arc::new(pdd::clock::SystemClock),
            None,
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(pdd::server::serve(gw.clone(), listener, None, async {
        let _ = rx.await;
    }));
    let req = Req::invio(invio_candidatura(&modulo()));
    let r = post(
        &format!("http://{addr}/pdd/PA"),
        req.xml().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains(FAULT_PROCESSAMENTO), "{}", r.body);
    assert!(
        intestazione(&r.body).is_none(),
        "no busta went out unsigned: {}",
        r.body
    );
    let ex = gw.store.exchange_by_id(&req.id).await.unwrap().unwrap();
    assert_eq!(ex.outcome, Outcome::ErroreProcessamento);
    let diag = gw.store.diagnostici(None, None).await.unwrap();
    assert!(diag.iter().any(|d| d.codice == "PDD_FIRMA"), "{diag:?}");
    // The sender may retry: its Identificatore was given back.
    assert_eq!(
        gw.store.claim(&req.id, 0, None).await.unwrap(),
        pdd::store::Claim::New
    );
    let _ = tx.send(());
    let _ = server.await;
}

/// The DigitPA qualification lists every fault of a busta: with `[busta] qualificazione` a
/// doubled Mittente (a value error the reader finds) and an unknown Destinatario (the
/// registry's) come in one answer; by default, as GovWay, only the first stage's.
#[tokio::test]
async fn in_qualification_mode_every_fault_is_in_one_answer() {
    let busta = || {
        Req::candidatura()
            .xml()
            .replacen(
                r#"<eGov_IT:IdentificativoParte tipo="SPC">EMILIA</eGov_IT:IdentificativoParte>"#,
                r#"<eGov_IT:IdentificativoParte tipo="SPC">EMILIA</eGov_IT:IdentificativoParte><eGov_IT:IdentificativoParte tipo="SPC">LAZIO</eGov_IT:IdentificativoParte>"#,
                1,
            )
            .replacen(
                r#"<eGov_IT:IdentificativoParte tipo="SPC">MinisteroLavoro</eGov_IT:IdentificativoParte>"#,
                r#"<eGov_IT:IdentificativoParte tipo="SPC">Sconosciuto</eGov_IT:IdentificativoParte>"#,
                1,
            )
    };
    let codici = |body: &str| -> Vec<String> {
        body.match_indices("codiceEccezione=\"")
            .map(|(i, m)| body[i + m.len()..i + m.len() + 11].to_string())
            .collect()
    };
    let mut c = Config::default();
    c.busta.errori_struttura = pdd::egov::validate::ErroriStruttura::Busta;
    let gw = start(c.clone()).await;
    let r = post(&gw.url("/pdd/PA"), busta().into_bytes(), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    let prima = codici(&r.body);
    assert!(
        prima.contains(&"EGOV_IT_101".into()) && !prima.contains(&"EGOV_IT_102".into()),
        "{prima:?}"
    );
    c.busta.qualificazione = true;
    let gw = start(c).await;
    let r = post(&gw.url("/pdd/PA"), busta().into_bytes(), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    let tutte = codici(&r.body);
    assert!(
        tutte.contains(&"EGOV_IT_101".into()) && tutte.contains(&"EGOV_IT_102".into()),
        "{tutte:?}"
    );
}

/// `indirizzoTelematico` is an xsd:anyURI: under Linee Guida 1.1 the qualification answers a
/// value such as `http://` with INFO 101 and processes the busta; GovWay (the default) refuses it.
#[tokio::test]
async fn in_qualification_mode_a_bare_indirizzo_telematico_is_info() {
    let busta = || {
        Req::candidatura().xml().replacen(
            r#"<eGov_IT:IdentificativoParte tipo="SPC">EMILIA</eGov_IT:IdentificativoParte>"#,
            r#"<eGov_IT:IdentificativoParte tipo="SPC" indirizzoTelematico="http://">EMILIA</eGov_IT:IdentificativoParte>"#,
            1,
        )
    };
    // By default GovWay's GRAVE (an error busta); in qualification mode INFO, and processed.
    for (qualificazione, status, rilevanza) in [(false, 500, "GRAVE"), (true, 200, "INFO")] {
        let mut c = Config::default();
        c.busta.qualificazione = qualificazione;
        let gw = start(c).await;
        let r = post(&gw.url("/pdd/PA"), busta().into_bytes(), &[]).await;
        assert_eq!(r.status, status, "{}", r.body);
        let eccezione = format!(r#"codiceEccezione="EGOV_IT_101" rilevanza="{rilevanza}""#);
        assert!(r.body.contains(&eccezione), "{}", r.body);
        assert_eq!(
            text_of(&r.body, "Tipo_Risposta").is_some(),
            qualificazione,
            "{}",
            r.body
        );
    }
}

/// The porta delegata at `/pdd/PD/{Servizio}`, as the WSDL's PortaDelegata service addresses
/// it: the SOAPAction names the azione; a SOAPAction that is a URI names none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
async fn the_porta_delegata_takes_the_azione_from_the_soapaction() {
    common::require(Peer::Curl);
    let ministero = start(Config::default()).await;
    let emilia = Config::parse(&format!(
        "[soggetto]\nnome = \"EMILIA\"\n[porta_delegata]\ndestinatario = \"SPC/MinisteroLavoro\"\n\
         [[registry.soggetti]]\nnome = \"MinisteroLavoro\"\nurl = \"{}\"\n",
        ministero.url("/pdd/PA")
    ))
    .unwrap();
    let emilia = start(emilia).await;
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/invio-candidatura-sil.xml"
    ))
    .unwrap();
    let url = emilia.url("/pdd/PD/ClicLavoro");
    let send = |action: &'static str| {
        let (url, body) = (url.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            common::curl(&["-H", &format!("SOAPAction: {action}"), &url], &body)
        })
    };
    let (code, status, text) = send("\"InvioCandidatura\"").await.unwrap();
    assert_eq!((code, status), (0, 200), "{text}");
    assert!(text.contains("<types:Tipo_Risposta>OK<"), "{text}");
    let azioni = |ex: Vec<pdd::store::Exchange>| -> Vec<Option<String>> {
        ex.into_iter().map(|e| e.azione).collect()
    };
    assert_eq!(
        azioni(ministero.gw.store.recent(10).await.unwrap()),
        [Some("InvioCandidatura".to_string())]
    );

    // A URI: no azione, which the ClicLavoro servizio requires; nothing leaves.
    let (code, status, text) = send("\"urn:cliclavoro:InvioCandidatura\"").await.unwrap();
    assert_eq!((code, status), (0, 500), "{text}");
    assert!(
        text.contains("EGOV_IT_106 - il servizio ClicLavoro richiede un'azione"),
        "{text}"
    );
    assert_eq!(ministero.gw.store.recent(10).await.unwrap().len(), 1);
}
