//! `pdd probe` against real porte applicative: pdd itself (plain, and over mutual TLS with
//! signatures: every case as the standard asks), and a deliberately wrong stand-in that answers
//! OK to everything (the cases it breaks are reported, exit 1).

mod common;

use common::{pdd_cli, On, Pki, TempDir};
use pdd::config::Config;
use pdd::registry::{PoliticaFirma, Soggetto};

fn casi(out: &str) -> serde_json::Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `pdd probe URL` from EMILIA to the Ministry, in JSON, with `extra` arguments.
async fn probe(url: String, extra: &[String]) -> (i32, String, String) {
    let mut args: Vec<String> = vec![
        "probe".into(),
        url,
        "--mittente".into(),
        "SPC/EMILIA".into(),
        "--destinatario".into(),
        "SPC/MinisteroLavoro".into(),
        "--format".into(),
        "json".into(),
    ];
    args.extend_from_slice(extra);
    let dir = TempDir::new("probe-cli");
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        pdd_cli(On::Data(&dir.0), &a)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_passes_against_pdd_itself() {
    let gw = common::start(Config::default()).await;
    let (code, out, err) = probe(gw.url("/pdd/PA"), &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let v = casi(&out);
    assert_eq!(v["failed"], 0, "{out}");
    let nomi: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    for n in [
        "valid",
        "duplicate",
        "expired",
        "unknown-mittente",
        "bad-date",
        "no-busta",
        "soap-1.2",
        "wrong-manifest",
    ] {
        assert!(nomi.contains(&n), "{n}: {nomi:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mutual_tls_with_signatures_a_broken_signature_is_caught_too() {
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", true, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", true, 30, 0);
    let mut c = Config::default();
    c.tls.cert = Some(me.cert.clone());
    c.tls.key = Some(me.key.clone());
    c.tls.ca = vec![pki.ca_path()];
    let mut s = Soggetto::new("SPC", "EMILIA");
    s.cert = Some(emilia.cert.display().to_string());
    s.firma = Some(PoliticaFirma::Required);
    c.registry.soggetti.push(s);
    let gw = common::start(c).await;
    let (code, out, err) = probe(
        format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port()),
        &[
            "--cert".into(),
            emilia.cert.display().to_string(),
            "--key".into(),
            emilia.key.display().to_string(),
            "--ca".into(),
            pki.ca_path().display().to_string(),
            "--firma".into(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let v = casi(&out);
    let firma = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["case"] == "broken-signature")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(firma["pass"], true, "{firma}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stand_in_that_answers_ok_to_everything_is_found_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Answers every request with HTTP 200 and an empty SOAP Body, whatever it was.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 20];
                let mut letti = 0;
                // The headers, then as much body as Content-Length says.
                loop {
                    let Ok(n) = s.read(&mut buf[letti..]).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    letti += n;
                    let t = String::from_utf8_lossy(&buf[..letti]).to_string();
                    if let Some((h, b)) = t.split_once("\r\n\r\n") {
                        let len = h
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                            })
                            .unwrap_or(0);
                        if b.len() >= len {
                            break;
                        }
                    }
                }
                let body = r#"<SOAP_ENV:Envelope xmlns:SOAP_ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP_ENV:Body/></SOAP_ENV:Envelope>"#;
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    });
    let (code, out, err) = probe(format!("http://{addr}/pdd/PA"), &[]).await;
    assert_eq!(code, 1, "{out}{err}");
    let v = casi(&out);
    let falliti: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["pass"] == false)
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    // No busta in its answers at all: even the valid case fails, and every faulty one.
    assert_eq!(falliti.len(), v["cases"].as_array().unwrap().len(), "{out}");
}
