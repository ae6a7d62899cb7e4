//! Chaos, bounded: three nodes (the NCN, EMILIA publishing, LAZIO receiving) and a stream of
//! national CVs from EMILIA's local system, which resends on EGOV_IT_300 or a refused
//! connection as the documentation tells it to. During the stream EMILIA and the NCN are each
//! killed (SIGKILL) and restarted, twice. At the end every CV the local system got an OK for is
//! held by EMILIA and published at LAZIO exactly once, and the NCN's outbox is empty.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{eventually_blocking, free_port, http, PddProcess, TempDir, CT_XML};
use pdd::modulo::{ws, Modulo};

/// A national Rev.038 CV of its own code, dated today.
fn cv(codice: &str) -> String {
    Modulo::Candidatura(common::cv_di_oggi(codice, "02")).scrivi()
}

fn get(porta: u16, path: &str) -> Option<serde_json::Value> {
    let (s, body) = http(([127, 0, 0, 1], porta).into(), "GET", path, &[], b"")?;
    (s == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Every code in a node's published CVs, with repeats.
fn pubblicati(porta: u16) -> Vec<String> {
    let mut out = Vec::new();
    let mut dopo: Option<String> = None;
    loop {
        let path = match &dopo {
            None => "/api/candidature?per_pagina=100".to_string(),
            Some(c) => format!("/api/candidature?per_pagina=100&dopo={c}"),
        };
        let Some(v) = get(porta, &path) else {
            return out;
        };
        for r in v["risultati"].as_array().unwrap() {
            out.push(r["codice"].as_str().unwrap().to_string());
        }
        match v["successiva"].as_str() {
            Some(c) => dopo = Some(c.to_string()),
            None => return out,
        }
    }
}

#[test]
fn acknowledged_cvs_survive_nodes_killed_during_a_stream() {
    let dir = TempDir::new("caos");
    let (p_ncn, p_emilia, p_lazio) = (free_port(), free_port(), free_port());
    common::config_nodo(
        &dir.0,
        "ncn",
        "MinisteroLavoro",
        "ncn",
        p_ncn,
        &[("EMILIA", p_emilia), ("LAZIO", p_lazio)],
    );
    common::config_nodo(
        &dir.0,
        "emilia",
        "EMILIA",
        "nr",
        p_emilia,
        &[("MinisteroLavoro", p_ncn)],
    );
    common::config_nodo(
        &dir.0,
        "lazio",
        "LAZIO",
        "nr",
        p_lazio,
        &[("MinisteroLavoro", p_ncn)],
    );
    let file = |n: &str| dir.0.join(format!("{n}.toml"));
    let mut ncn = PddProcess::serve_config(&file("ncn"));
    let mut emilia = PddProcess::serve_config(&file("emilia"));
    let lazio = PddProcess::serve_config(&file("lazio"));

    // The local system: one CV after the other, each resent until OK (at most 30 s).
    let confermati = Arc::new(Mutex::new(Vec::<String>::new()));
    let fine = Arc::new(AtomicBool::new(false));
    let sil = {
        let (confermati, fine) = (confermati.clone(), fine.clone());
        std::thread::spawn(move || {
            let op = ws::operazione("InvioCandidatura").unwrap();
            let mut i = 0u32;
            let mut reinvii = 0u32;
            while !fine.load(Ordering::SeqCst) {
                i += 1;
                let codice = format!("2026120600000000000{i:06}");
                let richiesta = pdd::soap::envelope(&[], &ws::richiesta(op, &cv(&codice)));
                let fino = std::time::Instant::now() + Duration::from_secs(30);
                while std::time::Instant::now() < fino {
                    let r = http(
                        ([127, 0, 0, 1], p_emilia).into(),
                        "POST",
                        "/pdd/PD/ClicLavoro/InvioCandidatura",
                        &[CT_XML],
                        richiesta.as_bytes(),
                    );
                    match r {
                        Some((200, b)) if b.contains("<types:Tipo_Risposta>OK<") => {
                            confermati.lock().unwrap().push(codice.clone());
                            break;
                        }
                        Some((200, b)) => panic!("{codice}: a KO: {b}"),
                        _ => {
                            reinvii += 1;
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            reinvii
        })
    };
    for _ in 0..2 {
        std::thread::sleep(Duration::from_secs(3));
        let _ = emilia.child.kill();
        let _ = emilia.child.wait();
        std::thread::sleep(Duration::from_millis(500));
        emilia = PddProcess::serve_config(&file("emilia"));
        std::thread::sleep(Duration::from_secs(3));
        let _ = ncn.child.kill();
        let _ = ncn.child.wait();
        std::thread::sleep(Duration::from_millis(500));
        ncn = PddProcess::serve_config(&file("ncn"));
    }
    std::thread::sleep(Duration::from_secs(2));
    fine.store(true, Ordering::SeqCst);
    let reinvii = sil.join().unwrap();
    let confermati = confermati.lock().unwrap().clone();
    assert!(confermati.len() >= 20, "{} acknowledged", confermati.len());

    let vuota =
        || get(p_ncn, "/admin/outbox").is_some_and(|v| v.as_array().is_some_and(|a| a.is_empty()));
    let t = std::time::Instant::now();
    while !vuota() {
        let v = get(p_ncn, "/admin/outbox");
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the NCN's outbox is not empty: {}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eventually_blocking("LAZIO publishes every acknowledged CV", || {
        let l = pubblicati(p_lazio);
        confermati.iter().all(|c| l.contains(c))
    });
    let (l, e) = (pubblicati(p_lazio), pubblicati(p_emilia));
    for c in &confermati {
        assert_eq!(l.iter().filter(|x| *x == c).count(), 1, "{c} at LAZIO");
        assert!(e.contains(c), "{c}: EMILIA, its origin, holds it");
    }
    eprintln!(
        "caos: {} CVs acknowledged, {reinvii} resends, 2 kills of EMILIA and 2 of the NCN",
        confermati.len()
    );
    drop((ncn, emilia, lazio));
}
