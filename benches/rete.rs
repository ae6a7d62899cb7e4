//! The read API over a populated store: `GET /api/candidature` as the gateway computes it
//! (scan, filter, page, JSON), with 1,000 and 10,000 active Candidature of about 5 KB.
//! Run: cargo bench --bench rete   (prints ms per request and requests/s, one core)

use std::sync::Arc;
use std::time::Instant;

use pdd::config::Config;
use pdd::modulo::{Modulo, Tipo};
use pdd::store::{SledStore, StatoModulo, Store, StoredModulo, Write};

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let xml = std::fs::read_to_string(format!(
        "{}/examples/moduli/candidatura-rev038.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let root = pdd::xml::parse_document(xml.as_bytes(), pdd::xml::Limits::default()).unwrap();
    let Some(Modulo::Candidatura(base)) = Modulo::leggi(&root) else {
        panic!("sample")
    };
    for n in [1_000usize, 10_000] {
        let dir = std::env::temp_dir().join(format!("pdd-bench-rete-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SledStore::open(&dir).unwrap();
        let mut batch = Vec::new();
        for i in 0..n {
            let mut c = base.clone();
            c.dati_sistema.codicecandidatura = format!("{:025}", i).into();
            // Spread over regions: every fourth in Bologna.
            if i % 4 == 0 {
                c.lavoratore.domicilio.idcomune = "A944".into();
            }
            let m = StoredModulo {
                kind: Tipo::Candidatura,
                code: c.dati_sistema.codicecandidatura.to_string(),
                versione: "rev038".into(),
                stato: StatoModulo::Attivo,
                received_at: quando(i),
                updated_at: quando(i),
                request_id: None,
                mittente: Some("SPC/EMILIA".into()),
                scadenza: chrono::NaiveDate::from_ymd_opt(2027, 1, 8),
                precedente: None,
                attuale: None,
                scheda: Some(pdd::modulo::scheda::candidatura(&c)),
                xml: Modulo::Candidatura(c).scrivi(),
                destinazioni: vec![],
                titolare: None,
            };
            batch.push(Write::Modulo(m));
            if batch.len() == 1000 {
                rt.block_on(store.apply(std::mem::take(&mut batch)))
                    .unwrap();
            }
        }
        rt.block_on(store.apply(batch)).unwrap();
        let config = Config {
            data: dir.clone(),
            ..Default::default()
        };
        let registry = config.build_registry().unwrap();
        let gw = pdd::server::gateway(
            config,
            registry,
            Arc::new(store),
            Arc::new(pdd::clock::SystemClock),
            None,
        )
        .unwrap();
        for (label, q) in [
            ("first page", "per_pagina=20"),
            ("regione=08 & q", "regione=08&q=pane&per_pagina=20"),
        ] {
            let first = rt
                .block_on(gw.api.pubblicati(Tipo::Candidatura, Some(q), false))
                .unwrap();
            std::hint::black_box(&first);
            let t0 = Instant::now();
            let mut k = 0u32;
            while t0.elapsed().as_millis() < 1500 || k < 3 {
                let v = rt
                    .block_on(gw.api.pubblicati(Tipo::Candidatura, Some(q), false))
                    .unwrap();
                std::hint::black_box(&v);
                k += 1;
            }
            let ms = t0.elapsed().as_secs_f64() * 1000.0 / k as f64;
            println!(
                "{n:>6} active CVs, {label:<16}: {ms:8.2} ms per request ({:.0} requests/s; totale {})",
                1000.0 / ms,
                first["totale"]
            );
        }
        drop(gw);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// A time of last November, spread over its days.
fn quando(i: usize) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(&format!("2026-11-{:02}T10:00:00.000+01:00", 1 + i % 27))
        .unwrap()
}
