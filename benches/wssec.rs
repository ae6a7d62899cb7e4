//! WS-Security cost per message, one core: signing (C14N of Body, busta and Timestamp, SHA-256,
//! RSA-2048) and verifying (parse, C14N, digests, RSA) a ClicLavoro InvioCandidatura.
//! Run: cargo bench --bench wssec   (prints messages/s and µs/message per message size)
//!
//! Then the same against libxmlsec1 (issue 7): sign, verify and sign+verify of the ~1 KB and
//! ~50 KB messages with pdd and with python-xmlsec (benches/xmlsec_py.py, in-process loops, one
//! thread each), the same key, certificate and bytes. Python comes from `PDD_PYTHON`, else
//! `target/pyenv/bin/python`; without xmlsec that part is skipped with a note on how to get it.

use pdd::cli::certs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pdd::wssec::{dsig, pki};

#[allow(dead_code, reason = "the tests use more of it")]
#[path = "../tests/common/peers.rs"]
mod peers;

/// An InvioCandidatura request whose Candidatura is about `target` bytes: below the sample's
/// size a compact one (see `compatto`), above it the sample padded with work experiences.
fn message(target: usize) -> String {
    let sample = std::fs::read_to_string(format!(
        "{}/examples/moduli/candidatura-2.0.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let doc = if target < sample.len() {
        compatto(&sample)
    } else {
        let start = sample.find("<cl:EsperienzeLavorative>").unwrap();
        let end =
            sample.find("</cl:EsperienzeLavorative>").unwrap() + "</cl:EsperienzeLavorative>".len();
        let esperienza = sample[start..end].to_string();
        let mut doc = sample.clone();
        while doc.len() < target {
            doc.insert_str(end, &esperienza);
        }
        doc
    };
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

/// The sample Candidatura without its comment, its indentation and the sections the schema
/// makes optional (EsperienzeLavorative, Istruzione, Lingue: minOccurs="0"): still a valid
/// modulo, the smallest realistic one.
fn compatto(sample: &str) -> String {
    let mut doc = sample.to_string();
    let cut = |doc: &mut String, open: &str, close: &str| {
        while let Some(a) = doc.find(open) {
            let b = doc[a..].find(close).unwrap() + a + close.len();
            doc.replace_range(a..b, "");
        }
    };
    cut(&mut doc, "<!--", "-->");
    for name in ["EsperienzeLavorative", "Istruzione", "Lingue"] {
        cut(&mut doc, &format!("<cl:{name}>"), &format!("</cl:{name}>"));
    }
    // Every text node sits on one line with its tags: trimming the lines drops only indentation.
    doc.lines().map(str::trim).collect()
}

/// Runs `f` once to warm up, then in batches of 10 for 1.5 s; returns µs per call.
fn per_call_us(mut f: impl FnMut()) -> (u64, f64) {
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
    (n, t0.elapsed().as_secs_f64())
}

fn rate(label: &str, bytes: usize, f: impl FnMut()) {
    let (n, secs) = per_call_us(f);
    println!(
        "{label:<8} {bytes:>7} bytes  {:>8.0} messages/s  {:>8.1} µs/message",
        n as f64 / secs,
        secs * 1e6 / n as f64
    );
}

/// The Python with python-xmlsec and lxml (the tests' partner stack), or None after saying how
/// to get one.
fn python() -> Option<PathBuf> {
    let p = peers::python();
    if peers::Peer::Python.present() {
        return Some(p);
    }
    println!(
        "\nSKIP the comparison with libxmlsec1: no Python with xmlsec and lxml at {} \
         (set PDD_PYTHON, or make the venv: `bash .ci/run`, or \
         `python3 -m venv target/pyenv && target/pyenv/bin/pip install -r tests/python/requirements.txt`)",
        p.display()
    );
    None
}

fn fail(msg: &str) -> ! {
    eprintln!("ERROR: {msg}");
    std::process::exit(1)
}

/// Microseconds per message for sign, verify and sign+verify.
struct Costi {
    sign: f64,
    verify: f64,
    both: f64,
}

/// pdd's signature of a message, as the gateway makes it.
fn firma(
    msg: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    cert: &openssl::x509::X509,
    now: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
) -> String {
    dsig::firma(
        msg,
        key,
        cert,
        now,
        ttl,
        dsig::Copertura::IntestazioneMessaggio,
    )
    .unwrap()
}

/// pdd's cost: `dsig::firma` (a str in, a String out), and `Envelope::parse` + `dsig::verifica`.
fn costi_pdd(
    msg: &str,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    cert: &openssl::x509::X509,
    now: chrono::DateTime<chrono::Utc>,
    ttl: chrono::Duration,
    regole: &dsig::Regole,
) -> (String, Costi) {
    let sign = || firma(msg, key, cert, now, ttl);
    let verify = |signed: &str| {
        let env = pdd::soap::Envelope::parse(signed.as_bytes(), pdd::xml::Limits::default())
            .map_err(|e| e.to_string())?;
        dsig::verifica(signed, &env, regole).map_err(|e| e.to_string())
    };
    let signed = sign();
    if let Err(e) = verify(&signed) {
        fail(&format!("pdd does not verify its own signed message: {e}"));
    }
    let us = |(n, secs): (u64, f64)| secs * 1e6 / n as f64;
    let costi = Costi {
        sign: us(per_call_us(|| {
            std::hint::black_box(sign());
        })),
        verify: us(per_call_us(|| {
            std::hint::black_box(verify(&signed).unwrap());
        })),
        both: us(per_call_us(|| {
            std::hint::black_box(verify(&sign()).unwrap());
        })),
    };
    (signed, costi)
}

/// python-xmlsec's cost on the same key, certificate and messages (benches/xmlsec_py.py); also
/// checks that pdd accepts the signature python makes (informational).
fn costi_xmlsec(py: &Path, dir: &Path, msg: &str, signed: &str, regole: &dsig::Regole) -> Costi {
    let (unsigned_f, signed_f, sample_f) = (
        dir.join("unsigned.xml"),
        dir.join("signed.xml"),
        dir.join("python-signed.xml"),
    );
    std::fs::write(&unsigned_f, msg).unwrap();
    std::fs::write(&signed_f, signed).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/xmlsec_py.py");
    let out = Command::new(py)
        .arg(script)
        .arg(dir.join("key.pem"))
        .arg(dir.join("cert.pem"))
        .arg(&unsigned_f)
        .arg(&signed_f)
        .arg("1.5")
        .arg("all")
        .arg(&sample_f)
        .output()
        .unwrap_or_else(|e| fail(&format!("{} does not run: {e}", py.display())));
    if !out.status.success() {
        fail(&format!(
            "benches/xmlsec_py.py failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        fail(&format!(
            "benches/xmlsec_py.py printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        ))
    });
    let us = |k: &str| {
        v[k]["us_per_message"]
            .as_f64()
            .unwrap_or_else(|| fail(&format!("no {k} in {v}")))
    };
    let theirs = std::fs::read_to_string(&sample_f).unwrap();
    let accepted = pdd::soap::Envelope::parse(theirs.as_bytes(), pdd::xml::Limits::default())
        .map_err(|e| e.to_string())
        .and_then(|env| dsig::verifica(&theirs, &env, regole).map_err(|e| e.to_string()));
    match accepted {
        Ok(_) => println!(
            "  {} bytes: python-xmlsec (libxmlsec1 {}, libxml2 {}) verifies pdd's message; \
             pdd verifies python-xmlsec's",
            msg.len(),
            v["libxmlsec"].as_str().unwrap_or("?"),
            v["libxml"].as_str().unwrap_or("?"),
        ),
        Err(e) => println!(
            "  {} bytes: python-xmlsec verifies pdd's message; pdd does NOT verify \
             python-xmlsec's ({e})",
            msg.len()
        ),
    }
    Costi {
        sign: us("sign"),
        verify: us("verify"),
        both: us("both"),
    }
}

fn main() {
    let key = certs::rsa_key().unwrap();
    let cert = certs::certificato(
        &certs::Richiesta {
            cn: "EMILIA",
            san: &[],
            days: 30,
            from_days: 0,
            uso: certs::Uso::Gateway,
        },
        &key,
        None,
        chrono::Utc::now(),
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
    // For a profiler: PDD_WSSEC_PROFILE=sign|verify:TARGET_BYTES:ITERATIONS runs only that loop.
    if let Ok(p) = std::env::var("PDD_WSSEC_PROFILE") {
        let mut it = p.split(':');
        let (what, target, n) = (it.next(), it.next(), it.next());
        let target: usize = target.and_then(|t| t.parse().ok()).unwrap_or(50_000);
        let n: u64 = n.and_then(|t| t.parse().ok()).unwrap_or(1000);
        let msg = message(target);
        let sign = || firma(&msg, &key, &cert, now, ttl);
        let signed = sign();
        for _ in 0..n {
            if what == Some("verify") {
                let env =
                    pdd::soap::Envelope::parse(signed.as_bytes(), pdd::xml::Limits::default())
                        .unwrap();
                std::hint::black_box(dsig::verifica(&signed, &env, &regole).unwrap());
            } else {
                std::hint::black_box(sign());
            }
        }
        return;
    }
    println!("WS-Security, one thread (exclusive C14N, SHA-256, RSA-2048):");
    let der_len = cert.to_der().unwrap().len();
    rate("cert check", der_len, || {
        std::hint::black_box(pki::controlla(&cert, now)).unwrap();
    });
    for size in [5_000, 50_000, 500_000] {
        let msg = message(size);
        let sign = || firma(&msg, &key, &cert, now, ttl);
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

    // The per-byte cost of what signing and verifying do to the Body: exclusive C14N of it and
    // its SHA-256 digest (issue 18: at least 600 MB/s on a 400 KB busta).
    println!("\nC14N + SHA-256 digest of the Body (the Candidatura escaped in it), one thread:");
    for size in [50_000, 400_000] {
        let msg = message(size);
        let env = pdd::soap::Envelope::parse(msg.as_bytes(), pdd::xml::Limits::default()).unwrap();
        let target = [pdd::wssec::c14n::Target {
            start: env.body.start,
            inclusive: vec![],
        }];
        let body_bytes = env.body.len();
        let (n, secs) = per_call_us(|| {
            let c = pdd::wssec::c14n::canonicalize(&msg, &target).unwrap();
            std::hint::black_box(openssl::sha::sha256(c[0].as_bytes()));
        });
        let per = secs / n as f64;
        println!(
            "c14n+sha {body_bytes:>7} bytes  {:>8.1} µs/Body  {:>8.0} MB/s",
            per * 1e6,
            body_bytes as f64 / per / 1e6
        );
    }

    // pdd against libxmlsec1 (python-xmlsec), issue 7.
    let Some(py) = python() else { return };
    let dir = std::env::temp_dir().join(format!("pdd-bench-wssec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.to_pem().unwrap()).unwrap();
    println!(
        "\npdd vs python-xmlsec (libxmlsec1), one thread each, µs/message; ratio = xmlsec time / \
         pdd time (> 1: pdd faster).\n\
         pdd verify = Envelope::parse + dsig::verifica (all policy checks); xmlsec verify = \
         lxml parse + Id registration + xmlsec verify only (key preloaded).\n\
         Size = unsigned / signed message bytes (a compact modulo of {} bytes, and the sample padded to ~50 KB).",
        compatto(&std::fs::read_to_string(format!(
            "{}/examples/moduli/candidatura-2.0.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap())
        .len()
    );
    let mut rows = Vec::new();
    for target in [1_000, 50_000] {
        let msg = message(target);
        let (signed, p) = costi_pdd(&msg, &key, &cert, now, ttl, &regole);
        let x = costi_xmlsec(&py, &dir, &msg, &signed, &regole);
        rows.push((msg.len(), signed.len(), p, x));
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "\n{:>15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}",
        "size (bytes)",
        "pdd sign",
        "xs sign",
        "pdd ver",
        "xs ver",
        "pdd s+v",
        "xs s+v",
        "ratio",
        "r sign",
        "r ver"
    );
    let (mut slower, mut insieme) = (false, false);
    for (u, s, p, x) in &rows {
        println!(
            "{:>15} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>7.2} {:>7.2} {:>7.2}",
            format!("{u}/{s}"),
            p.sign,
            x.sign,
            p.verify,
            x.verify,
            p.both,
            x.both,
            x.both / p.both,
            x.sign / p.sign,
            x.verify / p.verify,
        );
        slower |= x.sign < p.sign || x.verify < p.verify;
        insieme |= x.both < p.both;
    }
    // Issue 7 asks for sign + verify; the columns apart are shown too.
    println!(
        "sign + verify: pdd {}; {}",
        if insieme {
            "is SLOWER than libxmlsec1 at some size"
        } else {
            "is at least as fast as libxmlsec1 at every size"
        },
        if slower {
            "sign or verify alone: slower in at least one column (ratio < 1)"
        } else {
            "sign and verify alone: at least as fast in every column"
        }
    );
}
