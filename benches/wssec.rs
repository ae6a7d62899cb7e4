//! WS-Security cost per message, one core: signing (C14N of Body, busta and Timestamp, SHA-256,
//! RSA-2048) and verifying (parse, C14N, digests, RSA) a ClicLavoro InvioCandidatura.
//! Run: cargo bench --bench wssec   (prints messages/s and µs/message per message size)
//!
//! Then the same against libxmlsec1 (issue 7): sign, verify and sign+verify of the ~1 KB and
//! ~50 KB messages with pdd and with python-xmlsec (benches/xmlsec_py.py, in-process loops, one
//! thread each), the same key, certificate and bytes. Python comes from `PDD_PYTHON`, else
//! `target/pyenv/bin/python`; without xmlsec that part is skipped with a note on how to get it.

use pdd::cli::certs;

// The allocator `pdd` runs with (src/main.rs): the figures are the gateway's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATORE: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::Path;
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
fn python() -> Option<Pari> {
    let p = peers::python();
    if peers::Peer::Python.present() {
        return Some(Pari {
            nome: "python-xmlsec (libxmlsec1)",
            versioni: &["libxmlsec", "libxml"],
            comando: vec![
                p.into(),
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("benches/xmlsec_py.py")
                    .into(),
            ],
        });
    }
    println!(
        "\nSKIP the comparison with libxmlsec1: no Python with xmlsec and lxml at {} \
         (set PDD_PYTHON, or make the venv: `bash .ci/run`, or \
         `python3 -m venv target/pyenv && target/pyenv/bin/pip install -r tests/python/requirements.txt`)",
        p.display()
    );
    None
}

/// Apache WSS4J 1.6 with Santuario (the library the reference gateway signs with), through
/// benches/wss4j/run.sh, when Debian's jars and a JDK are installed.
fn wss4j() -> Option<Pari> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/wss4j/run.sh");
    let pronto = Command::new("bash")
        .arg(&script)
        .arg("--check")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !pronto {
        println!(
            "\nSKIP the comparison with WSS4J: benches/wss4j/run.sh --check fails (it needs a JDK \
             and `apt-get install libwss4j-java libxml-security-java`)"
        );
        return None;
    }
    Some(Pari {
        nome: "WSS4J",
        versioni: &["wss4j", "santuario", "java"],
        comando: vec!["bash".into(), script.into()],
    })
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

/// Another implementation's harness, called with one contract: `PROGRAM... KEY CERT UNSIGNED
/// SIGNED SECONDS all SAMPLE_OUT`, printing one JSON object of µs per message.
struct Pari {
    nome: &'static str,
    /// What its JSON says of its versions (keys).
    versioni: &'static [&'static str],
    comando: Vec<std::ffi::OsString>,
}

/// The peer's cost on the same key, certificate and messages; also checks that pdd accepts
/// the signature the peer makes (informational).
fn costi_pari(pari: &Pari, dir: &Path, msg: &str, signed: &str, regole: &dsig::Regole) -> Costi {
    let (unsigned_f, signed_f, sample_f) = (
        dir.join("unsigned.xml"),
        dir.join("signed.xml"),
        dir.join("peer-signed.xml"),
    );
    std::fs::write(&unsigned_f, msg).unwrap();
    std::fs::write(&signed_f, signed).unwrap();
    let out = Command::new(&pari.comando[0])
        .args(&pari.comando[1..])
        .arg(dir.join("key.pem"))
        .arg(dir.join("cert.pem"))
        .arg(&unsigned_f)
        .arg(&signed_f)
        .arg("1.5")
        .arg("all")
        .arg(&sample_f)
        .output()
        .unwrap_or_else(|e| fail(&format!("{} does not run: {e}", pari.nome)));
    if !out.status.success() {
        fail(&format!(
            "{} failed ({}): {}{}",
            pari.nome,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        fail(&format!(
            "{} printed no JSON ({e}): {}",
            pari.nome,
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
    let versioni: Vec<String> = pari
        .versioni
        .iter()
        .map(|k| format!("{k} {}", v[*k].as_str().unwrap_or("?")))
        .collect();
    match accepted {
        Ok(_) => println!(
            "  {} bytes: {} ({}) verifies pdd's message; pdd verifies its",
            msg.len(),
            pari.nome,
            versioni.join(", ")
        ),
        Err(e) => println!(
            "  {} bytes: {} verifies pdd's message; pdd does NOT verify its ({e})",
            msg.len(),
            pari.nome
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
    // For another implementation's harness: PDD_WSSEC_DUMP=DIR writes the key, the certificate
    // and the messages the comparisons use (unsigned, and signed by pdd), then stops.
    if let Ok(dir) = std::env::var("PDD_WSSEC_DUMP") {
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("key.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.to_pem().unwrap()).unwrap();
        for target in [1_000, 50_000] {
            let msg = message(target);
            let signed = firma(&msg, &key, &cert, now, ttl);
            std::fs::write(dir.join(format!("unsigned-{target}.xml")), &msg).unwrap();
            std::fs::write(dir.join(format!("signed-{target}.xml")), signed).unwrap();
        }
        return;
    }
    // For a profiler: PDD_WSSEC_PROFILE=sign|verify|c14n:TARGET_BYTES:ITERATIONS runs only that loop.
    if let Ok(p) = std::env::var("PDD_WSSEC_PROFILE") {
        let mut it = p.split(':');
        let (what, target, n) = (it.next(), it.next(), it.next());
        let target: usize = target.and_then(|t| t.parse().ok()).unwrap_or(50_000);
        let n: u64 = n.and_then(|t| t.parse().ok()).unwrap_or(1000);
        let msg = message(target);
        let sign = || firma(&msg, &key, &cert, now, ttl);
        let signed = sign();
        let env = pdd::soap::Envelope::parse(msg.as_bytes(), pdd::xml::Limits::default()).unwrap();
        let body = [pdd::wssec::c14n::Target {
            start: env.body.start,
            inclusive: vec![],
        }];
        for _ in 0..n {
            if what == Some("c14n") {
                let c = pdd::wssec::c14n::canonicalize(&msg, &body).unwrap();
                std::hint::black_box(openssl::sha::sha256(c[0].as_bytes()));
            } else if what == Some("verify") {
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
    // pdd against libxmlsec1 (python-xmlsec, issue 7) and WSS4J (issue 18), on the same key,
    // certificate and messages; pdd measured again right before each peer.
    let pari: Vec<Pari> = [python(), wss4j()].into_iter().flatten().collect();
    if pari.is_empty() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pdd-bench-wssec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("key.pem"), key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.to_pem().unwrap()).unwrap();
    let modulo = compatto(
        &std::fs::read_to_string(format!(
            "{}/examples/moduli/candidatura-2.0.xml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .len();
    for pari in &pari {
        println!(
            "\npdd vs {}, one thread each, µs/message; ratio = its time / pdd time (> 1: pdd \
             faster).\n\
             pdd verify = Envelope::parse + dsig::verifica (all policy checks); the peer's verify \
             = its parse + its signature check (key preloaded).\n\
             Size = unsigned / signed message bytes (a compact modulo of {modulo} bytes, and the \
             sample padded to ~50 KB).",
            pari.nome
        );
        let mut rows = Vec::new();
        for target in [1_000, 50_000] {
            let msg = message(target);
            let (signed, p) = costi_pdd(&msg, &key, &cert, now, ttl, &regole);
            let x = costi_pari(pari, &dir, &msg, &signed, &regole);
            rows.push((msg.len(), signed.len(), p, x));
        }
        println!(
            "\n{:>15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}",
            "size (bytes)",
            "pdd sign",
            "its sign",
            "pdd ver",
            "its ver",
            "pdd s+v",
            "its s+v",
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
        println!(
            "sign + verify: pdd {} {}; {}",
            if insieme {
                "is SLOWER than"
            } else {
                "is at least as fast as"
            },
            pari.nome,
            if slower {
                "sign or verify alone: slower in at least one column (ratio < 1)"
            } else {
                "sign and verify alone: at least as fast in every column"
            }
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
