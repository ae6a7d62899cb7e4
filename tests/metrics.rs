//! `GET /metrics` scraped from the real server and parsed: exchange counters by outcome and
//! code, phase histograms, duplicates, outbox, moduli, certificate expiry.

mod common;

use std::collections::HashMap;

use common::{http, post, start, Pki, Req};
use pdd::config::Config;
use pdd::registry::Soggetto;

/// The samples of a scrape: `name{labels}` → value; every line is a comment or a sample.
fn campioni(text: &str) -> HashMap<String, f64> {
    let mut m = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (k, v) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let v: f64 = v.parse().unwrap_or_else(|_| panic!("bad value in {line}"));
        assert!(
            k.chars().next().is_some_and(|c| c.is_ascii_alphabetic()),
            "bad name in {line}"
        );
        m.insert(k.to_string(), v);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened() {
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, -1);
    let mut c = Config::default();
    let mut s = Soggetto::new("SPC", "EMILIA");
    s.cert = Some(emilia.cert.display().to_string());
    c.registry.soggetti.push(s);
    let gw = start(c).await;
    let pa = gw.url("/pdd/PA");
    // One OK, sent twice (the second a duplicate), one business KO, one busta error, one Fault.
    let ok = Req::candidatura().xml();
    assert_eq!(post(&pa, ok.clone().into_bytes(), &[]).await.status, 200);
    assert_eq!(post(&pa, ok.into_bytes(), &[]).await.status, 500);
    let ko = Req::invio(common::invio_candidatura(
        "<cl:Candidatura xmlns:cl=\"http://servizi.lavoro.gov.it/candidatura\"/>",
    ))
    .xml();
    assert_eq!(post(&pa, ko.into_bytes(), &[]).await.status, 200);
    let mut wrong = Req::candidatura();
    wrong.servizio = "NonEsiste";
    assert_eq!(post(&pa, wrong.xml().into_bytes(), &[]).await.status, 500);
    assert_eq!(post(&pa, b"not xml".to_vec(), &[]).await.status, 500);

    let (status, text) = http(gw.addr, "GET", "/metrics", &[], b"").expect("an answer");
    assert_eq!(status, 200);
    let m = campioni(&text);
    let scambi = |outcome: &str, codice: &str| -> f64 {
        m.iter()
            .filter(|(k, _)| {
                k.starts_with("pdd_exchanges_total{direction=\"in\"")
                    && k.contains(&format!("outcome=\"{outcome}\""))
                    && k.contains(&format!("codice=\"{codice}\""))
            })
            .map(|(_, v)| v)
            .sum()
    };
    assert_eq!(scambi("ok", ""), 1.0, "{text}");
    assert_eq!(scambi("ko", ""), 1.0, "{text}");
    assert_eq!(scambi("duplicato", "EGOV_IT_110"), 1.0, "{text}");
    assert_eq!(scambi("errore_busta", "EGOV_IT_105"), 1.0, "{text}");
    assert_eq!(scambi("fault", ""), 1.0, "{text}");
    assert_eq!(m["pdd_duplicates_rejected_total"], 1.0);
    assert!(text.contains(
        "pdd_exchanges_total{direction=\"in\",servizio=\"SPC/ClicLavoro\",azione=\"InvioCandidatura\",outcome=\"ok\",codice=\"\"} 1"
    ), "{text}");
    // Every request was parsed; the valid ones validated; those that passed reached the service;
    // every one was stored.
    assert_eq!(m["pdd_phase_seconds_count{phase=\"parse\"}"], 5.0);
    assert_eq!(m["pdd_phase_seconds_count{phase=\"service\"}"], 2.0);
    assert_eq!(m["pdd_phase_seconds_count{phase=\"store\"}"], 5.0);
    assert_eq!(
        m["pdd_phase_seconds_bucket{phase=\"store\",le=\"+Inf\"}"],
        5.0
    );
    assert!(m["pdd_phase_seconds_sum{phase=\"store\"}"] > 0.0);
    assert_eq!(m["pdd_outbox_entries{state=\"pending\"}"], 0.0);
    assert_eq!(m["pdd_moduli{kind=\"candidatura\",state=\"attivo\"}"], 1.0);
    let days = m["pdd_certificate_expiry_days{soggetto=\"SPC/EMILIA\",own=\"false\"}"];
    assert!((28.5..=29.5).contains(&days), "{days}");
}
