//! Modulo validation throughput: schema, code tables, codice fiscale and rules, one core.
//! Run: cargo bench --bench moduli   (prints moduli/s and MB/s per sample)

use std::time::{Duration, Instant};

use pdd::modulo::{self, Contesto};

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/examples/moduli/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("sample")
}

/// The 2.0 Candidatura padded with more work experiences to about `target` bytes.
fn padded(target: usize) -> Vec<u8> {
    let base = String::from_utf8(sample("candidatura-2.0.xml")).unwrap();
    let start = base.find("<cl:EsperienzeLavorative>").unwrap();
    let end = base.find("</cl:EsperienzeLavorative>").unwrap() + "</cl:EsperienzeLavorative>".len();
    let esperienza = &base[start..end];
    let mut doc = base.clone();
    while doc.len() < target {
        doc.insert_str(end, esperienza);
    }
    doc.into_bytes()
}

fn run(label: &str, doc: &[u8], ctx: &Contesto) {
    // Warm up (tables and schemas load on first use).
    let first = modulo::valida(doc, ctx);
    assert!(first.valido_schema(), "{label}: {:?}", first.problemi);
    let budget = Duration::from_millis(1500);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        for _ in 0..100 {
            let e = modulo::valida(doc, ctx);
            std::hint::black_box(&e);
        }
        n += 100;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{label:<34} {:>6} bytes  {:>9.0} moduli/s  {:>7.1} MB/s  {:>6.1} µs/modulo",
        doc.len(),
        n as f64 / secs,
        n as f64 * doc.len() as f64 / secs / 1e6,
        secs * 1e6 / n as f64
    );
}

fn main() {
    let ctx = Contesto {
        ricevuto: chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap(),
        versione: None,
    };
    println!("modulo validation, one thread (schema + tables + codice fiscale + rules):");
    for name in [
        "candidatura-2.0.xml",
        "candidatura-rev038.xml",
        "vacancy-2.0.xml",
        "vacancy-rev038.xml",
        "messaggio-rev038.xml",
    ] {
        run(name, &sample(name), &ctx);
    }
    run("candidatura-2.0 padded to 5 KB", &padded(5 * 1024), &ctx);
    run("candidatura-2.0 padded to 50 KB", &padded(50 * 1024), &ctx);

    println!("the published scheda, built and written as the modulo's record holds it:");
    for (label, doc) in [
        ("candidatura-rev038.xml", sample("candidatura-rev038.xml")),
        ("candidatura-2.0 padded to 50 KB", padded(50 * 1024)),
    ] {
        scheda(label, &doc);
    }
}

fn scheda(label: &str, doc: &[u8]) {
    let root = pdd::xml::parse_document(doc, pdd::xml::Limits::default()).unwrap();
    let Some(modulo::Modulo::Candidatura(c)) = modulo::Modulo::leggi(&root) else {
        panic!("{label}: not a Candidatura")
    };
    let budget = Duration::from_millis(1500);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        for _ in 0..100 {
            let s = modulo::scheda::candidatura(&c);
            std::hint::black_box(serde_json::to_vec(&s).unwrap());
        }
        n += 100;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{label:<34} {:>6} bytes  {:>6.1} µs/scheda",
        doc.len(),
        secs * 1e6 / n as f64
    );
}
