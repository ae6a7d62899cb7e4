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
    run(
        "candidatura-2.0 padded to 400 KB",
        &padded(400 * 1024),
        &ctx,
    );

    println!("the stages of validating the 50 KB Candidatura, each alone:");
    stadi(&padded(50 * 1024));

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
            // As the sled store writes it: the JSON of the scheda without its two objects,
            // which it keeps beside it as their text.
            let mut s = modulo::scheda::candidatura(&c);
            let oggetti = (s.pubblico.take(), s.contatto.take());
            std::hint::black_box((serde_json::to_vec(&s).unwrap(), oggetti));
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

/// µs per call of `f`: the best of ten rounds of 100 ms, steadier than a mean on a machine
/// shared with other work.
fn tempo(mut f: impl FnMut()) -> f64 {
    f();
    let mut migliore = f64::MAX;
    for _ in 0..10 {
        let t0 = Instant::now();
        let mut n = 0u64;
        while t0.elapsed() < Duration::from_millis(100) {
            for _ in 0..10 {
                f();
            }
            n += 10;
        }
        migliore = migliore.min(t0.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    migliore
}

fn stadi(doc: &[u8]) {
    use pdd::xml::{parse_document, Limits};
    let root = parse_document(doc, Limits::default()).unwrap();
    let tipo = modulo::Tipo::di(&root).unwrap();
    let versione = modulo::rileva_versione(tipo, &root);
    let schema = modulo::schema(tipo, versione);
    let m = modulo::Modulo::leggi(&root).unwrap();
    // The InvioCandidatura around it, as a partner sends it: the modulo escaped in the Body.
    let op = modulo::ws::OPERAZIONI
        .iter()
        .find(|o| o.azione == "InvioCandidatura")
        .unwrap();
    let busta = format!(
        "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"><soapenv:Body>{}</soapenv:Body></soapenv:Envelope>",
        modulo::ws::richiesta(op, std::str::from_utf8(doc).unwrap())
    );
    let env = pdd::soap::Envelope::parse(busta.as_bytes(), Limits::default()).unwrap();
    let righe: [(&str, f64); 8] = [
        (
            "the envelope (soap::Envelope::parse)",
            tempo(|| {
                std::hint::black_box(
                    pdd::soap::Envelope::parse(busta.as_bytes(), Limits::default()).unwrap(),
                );
            }),
        ),
        (
            "the Body's tree, the modulo its text",
            tempo(|| {
                std::hint::black_box(env.body_tree(Limits::default()).unwrap());
            }),
        ),
        (
            "the envelope with the Body's tree, one pass (parse_con_corpo)",
            tempo(|| {
                let env = pdd::soap::Envelope::parse_con_corpo(busta.as_bytes(), Limits::default())
                    .unwrap();
                std::hint::black_box(env.body_tree(Limits::default()).unwrap());
            }),
        ),
        (
            "quick-xml's events alone (as the tree reads them)",
            tempo(|| {
                let testo = std::str::from_utf8(doc).unwrap();
                let mut r = quick_xml::reader::NsReader::from_str(testo);
                let mut n = 0usize;
                loop {
                    match r.read_event() {
                        Ok(quick_xml::events::Event::Eof) => break,
                        Ok(_) => n += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                std::hint::black_box(n);
            }),
        ),
        (
            "the tree (xml::parse_document)",
            tempo(|| {
                std::hint::black_box(parse_document(doc, Limits::default()).unwrap());
            }),
        ),
        (
            "the schema (xsd::Schema::validate)",
            tempo(|| {
                std::hint::black_box(schema.validate(&root));
            }),
        ),
        (
            "the model (Modulo::leggi)",
            tempo(|| {
                std::hint::black_box(modulo::Modulo::leggi(&root));
            }),
        ),
        (
            "the scheda (scheda::candidatura)",
            tempo(|| {
                if let modulo::Modulo::Candidatura(c) = &m {
                    std::hint::black_box(modulo::scheda::candidatura(c));
                }
            }),
        ),
    ];
    for (label, us) in righe {
        println!(
            "  {label:<36} {us:>7.1} µs  {:>7.1} MB/s",
            doc.len() as f64 / us
        );
    }
}
