//! WS-Security cost per message, one core: signing (C14N of Body, busta and Timestamp, SHA-256,
//! RSA-2048) and verifying (parse, C14N, digests, RSA) a ClicLavoro InvioCandidatura.
//! Run: cargo bench --bench wssec   (prints messages/s and µs/message per message size)

use std::time::{Duration, Instant};

use pdd::wssec::{dsig, pki};

/// An InvioCandidatura request with the sample Candidatura padded to about `target` bytes.
fn message(target: usize) -> String {
    let modulo = std::fs::read_to_string(format!(
        "{}/examples/moduli/candidatura-2.0.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let start = modulo.find("<cl:EsperienzeLavorative>").unwrap();
    let end =
        modulo.find("</cl:EsperienzeLavorative>").unwrap() + "</cl:EsperienzeLavorative>".len();
    let esperienza = modulo[start..end].to_string();
    let mut doc = modulo.clone();
    while doc.len() < target {
        doc.insert_str(end, &esperienza);
    }
    let esc = doc
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let envelope = std::fs::read_to_string(format!(
        "{}/examples/richiesta-candidatura.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let a = envelope.find("<types:CandidaturaXML>").unwrap() + "<types:CandidaturaXML>".len();
    let b = envelope.find("</types:CandidaturaXML>").unwrap();
    format!("{}{esc}{}", &envelope[..a], &envelope[b..])
}

fn rate(label: &str, bytes: usize, mut f: impl FnMut()) {
    f();
    let budget = Duration::from_millis(1500);
    let t0 = Instant::now();
    let mut n = 0u64;
    while t0.elapsed() < budget {
        for _ in 0..10 {
            f();
        }
        n += 10;
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{label:<8} {bytes:>7} bytes  {:>8.0} messages/s  {:>8.1} µs/message",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

fn main() {
    let key = pki::rsa_key().unwrap();
    let cert = pki::certificato(
        &pki::Richiesta {
            cn: "EMILIA",
            san: &[],
            days: 30,
            from_days: 0,
            uso: pki::Uso::Gateway,
        },
        &key,
        None,
    )
    .unwrap();
    let now = chrono::Utc::now();
    let ttl = chrono::Duration::minutes(5);
    let regole = dsig::Regole {
        now,
        tolleranza: chrono::Duration::seconds(60),
        durata_massima: ttl,
        copertura: dsig::Copertura::IntestazioneMessaggio,
    };
    println!("WS-Security, one thread (exclusive C14N, SHA-256, RSA-2048):");
    let der_len = cert.to_der().unwrap().len();
    rate("cert check", der_len, || {
        std::hint::black_box(pki::controlla(&cert, now)).unwrap();
    });
    for size in [5_000, 50_000, 500_000] {
        let msg = message(size);
        let sign = || {
            dsig::firma(
                &msg,
                &key,
                &cert,
                now,
                ttl,
                dsig::Copertura::IntestazioneMessaggio,
            )
            .unwrap()
        };
        rate("sign", msg.len(), || {
            std::hint::black_box(sign());
        });
        let signed = sign();
        rate("verify", signed.len(), || {
            let env =
                pdd::soap::Envelope::parse(signed.as_bytes(), pdd::xml::Limits::default()).unwrap();
            let ok = dsig::verifica(&signed, &env, &regole).unwrap();
            std::hint::black_box(ok);
        });
    }
}
