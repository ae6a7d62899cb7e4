//! pdd against a second SOAP / WS-Security stack: zeep and python-xmlsec (tests/python/pdd_peer.py).
//! A partner's zeep client calls the real gateway through wsdl/cliclavoroWS.wsdl over mutual TLS
//! with a signed busta; zeep verifies what pdd signs, and pdd verifies what zeep signs.
//!
//! Python comes from `PDD_PYTHON`, else `target/pyenv/bin/python` (made by `.ci/run` from
//! tests/python/requirements.txt); without zeep and xmlsec the tests are ignored, unless
//! `PDD_REQUIRE_PEERS` is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Pki, TempDir};
use pdd::config::Config;
use pdd::registry::{PoliticaFirma, Soggetto};

/// The partner stack's Python, which must be here (the tests are ignored when the build found
/// it missing).
fn python() -> PathBuf {
    common::require(common::Peer::Python);
    common::peers::python()
}

/// Runs pdd_peer.py; returns (exit status, stdout, stderr).
fn peer(py: &Path, args: &[&str]) -> (i32, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/pdd_peer.py");
    let out = Command::new(py)
        .arg(script)
        .args(args)
        .env_remove("REQUESTS_CA_BUNDLE")
        .env_remove("CURL_CA_BUNDLE")
        .output()
        .expect("python runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn request() -> String {
    common::Req::candidatura().xml()
}

#[test]
#[cfg_attr(
    pdd_no_python,
    ignore = "no Python with zeep and python-xmlsec (PDD_PYTHON, else target/pyenv: see the README)"
)]
fn zeep_and_python_xmlsec_verify_what_pdd_signs() {
    let py = python();
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let other = pki.make("lazio", "LAZIO", false, 30, 0);
    let dir = TempDir::new("pypeer");
    let signed = me.sign(&request());
    let f = dir.0.join("signed.xml");
    std::fs::write(&f, &signed).unwrap();
    let fs = f.to_str().unwrap();

    let (code, out, err) = peer(&py, &["verify", fs, me.cert.to_str().unwrap()]);
    assert_eq!((code, out.trim()), (0, "OK"), "{err}");

    // Against another partner's certificate: refused.
    let (code, out, _) = peer(&py, &["verify", fs, other.cert.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("FAIL"), "{out}");

    // A changed Body (the modulo's text) no longer verifies.
    let tampered = signed.replacen("<types:CandidaturaXML>", "<types:CandidaturaXML> ", 1);
    assert_ne!(tampered, signed);
    std::fs::write(&f, &tampered).unwrap();
    let (code, out, _) = peer(&py, &["verify", fs, me.cert.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");

    // A changed busta (not covered by zeep's own verifier, by ours) no longer verifies either.
    let tampered = signed.replacen(">ClicLavoro<", ">ClicLavoro2<", 1);
    assert_ne!(tampered, signed);
    std::fs::write(&f, &tampered).unwrap();
    let (code, out, _) = peer(&py, &["verify", fs, me.cert.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
}

#[test]
#[cfg_attr(
    pdd_no_python,
    ignore = "no Python with zeep and python-xmlsec (PDD_PYTHON, else target/pyenv: see the README)"
)]
fn pdd_verifies_what_python_xmlsec_signs() {
    let py = python();
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let dir = TempDir::new("pypeer");
    let (src, out) = (dir.0.join("msg.xml"), dir.0.join("signed.xml"));
    std::fs::write(&src, request()).unwrap();
    let (code, _, err) = peer(
        &py,
        &[
            "sign",
            src.to_str().unwrap(),
            emilia.key.to_str().unwrap(),
            emilia.cert.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let signed = std::fs::read_to_string(&out).unwrap();
    let ok = common::verify_signed(&signed).expect("pdd verifies the python signature");
    assert_eq!(
        pdd::wssec::pki::cn(&ok.cert).as_deref(),
        Some("EMILIA"),
        "the token is EMILIA's certificate"
    );

    let tampered = signed.replacen("InvioCandidatura<", "InvioVacancy<", 1);
    assert_ne!(tampered, signed);
    assert!(common::verify_signed(&tampered).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    pdd_no_python,
    ignore = "no Python with zeep and python-xmlsec (PDD_PYTHON, else target/pyenv: see the README)"
)]
async fn a_zeep_client_calls_the_gateway_over_mutual_tls_with_signatures() {
    let py = python();
    let pki = Pki::new();
    let me = pki.make("ministero", "MinisteroLavoro", false, 30, 0);
    let emilia = pki.make("emilia", "EMILIA", false, 30, 0);
    let mut c = Config::default();
    c.tls.cert = Some(me.cert.clone());
    c.tls.key = Some(me.key.clone());
    let mut s = Soggetto::new("SPC", "EMILIA");
    s.cert = Some(emilia.cert.display().to_string());
    s.firma = Some(PoliticaFirma::Required);
    c.registry.soggetti.push(s);
    let gw = common::start(c).await;
    let url = format!("https://127.0.0.1:{}/pdd/PA", gw.addr.port());
    let wsdl = Path::new(env!("CARGO_MANIFEST_DIR")).join("wsdl/cliclavoroWS.wsdl");
    let modulo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/moduli/candidatura-2.0.xml");

    let now = chrono::Local::now().naive_local();
    let ident = common::id("EMILIA", now);
    let ora = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    let call_with = |cmd: &'static str, ident: String, peer_cert: PathBuf| {
        let (py, url, wsdl, modulo, ora) = (
            py.clone(),
            url.clone(),
            wsdl.clone(),
            modulo.clone(),
            ora.clone(),
        );
        let (emilia, me) = (emilia.clone(), me.clone());
        tokio::task::spawn_blocking(move || {
            peer(
                &py,
                &[
                    cmd,
                    wsdl.to_str().unwrap(),
                    &url,
                    emilia.key.to_str().unwrap(),
                    emilia.cert.to_str().unwrap(),
                    me.cert.to_str().unwrap(),
                    peer_cert.to_str().unwrap(),
                    modulo.to_str().unwrap(),
                    &ident,
                    &ora,
                ],
            )
        })
    };

    let (code, out, err) = call_with("call", ident.clone(), me.cert.clone())
        .await
        .unwrap();
    if code != 0 {
        let last = gw.gw.store.recent(1).await.unwrap();
        let seen = last.first().map(|e| {
            (
                e.eccezioni.clone(),
                e.note.clone(),
                String::from_utf8_lossy(&e.request).into_owned(),
            )
        });
        panic!("zeep call failed:\n{out}\n{err}\nthe gateway saw: {seen:#?}");
    }
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(v["Tipo_Risposta"], "OK", "{out}");
    assert_eq!(v["Mittente"], "MinisteroLavoro");
    assert_eq!(v["RiferimentoMessaggio"], ident.as_str());

    // The gateway recorded the exchange under zeep's Identificatore, signature checked.
    let rec = gw
        .gw
        .store
        .exchange_by_id(&ident)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(rec.outcome, pdd::store::Outcome::Ok);
    assert!(String::from_utf8_lossy(&rec.request).contains("BinarySecurityToken"));

    // The same Identificatore again: the duplicate filter answers, and zeep raises the Fault.
    let (code, out, err) = call_with("call", ident.clone(), me.cert.clone())
        .await
        .unwrap();
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("EGOV_IT_001"), "{err}");

    // zeep checks the answer's signature: expecting another signer, it refuses the answer.
    let ident2 = common::id("EMILIA", now + chrono::Duration::seconds(1));
    let (code, _, err) = call_with("call", ident2, emilia.cert.clone())
        .await
        .unwrap();
    assert_ne!(code, 0);
    assert!(
        err.contains("Rifiutata: the token is not the partner's certificate"),
        "{err}"
    );

    // zeep's stock BinarySignature signs the Body but neither the busta nor a Timestamp, which
    // SPCoop requires: refused with EGOV_IT_200, saying what is missing (first, the Timestamp).
    let ident3 = common::id("EMILIA", now);
    let (code, _, err) = call_with("call-stock", ident3.clone(), me.cert.clone())
        .await
        .unwrap();
    // (zeep then fails on our signed error busta too: its BinarySignature checks answers
    // against its own certificate, not the partner's.)
    assert_ne!(code, 0, "{err}");
    let rec = gw
        .gw
        .store
        .exchange_by_id(&ident3)
        .await
        .unwrap()
        .expect("recorded");
    assert_eq!(rec.eccezioni.len(), 1, "{:?}", rec.eccezioni);
    assert_eq!(rec.eccezioni[0].codice, pdd::egov::Codice::SICUREZZA);
    assert!(
        rec.note
            .as_deref()
            .unwrap_or("")
            .contains("Timestamp assente"),
        "{:?}",
        rec.note
    );
}

/// A local system's zeep client and the WSDL: one service per porta (PortaApplicativa,
/// PortaDelegata), one port each; one proxy of the porta delegata's binding, at EMILIA's
/// `/pdd/PD/ClicLavoro`, calls two operations (the SOAPAction names the azione), which reach the
/// Ministry as buste with their azione.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    pdd_no_python,
    ignore = "no Python with zeep and python-xmlsec (PDD_PYTHON, else target/pyenv: see the README)"
)]
async fn a_zeep_client_calls_every_operation_of_the_porta_delegata_through_one_service() {
    let py = python();
    let ministero = common::start(Config::default()).await;
    let emilia = Config::parse(&format!(
        "[soggetto]\nnome = \"EMILIA\"\n[porta_delegata]\ndestinatario = \"SPC/MinisteroLavoro\"\n\
         [[registry.soggetti]]\nnome = \"MinisteroLavoro\"\nurl = \"{}\"\n",
        ministero.url("/pdd/PA")
    ))
    .unwrap();
    let emilia = common::start(emilia).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (wsdl, candidatura, vacancy) = (
        root.join("wsdl/cliclavoroWS.wsdl"),
        root.join("examples/moduli/candidatura-2.0.xml"),
        root.join("examples/moduli/vacancy-2.0.xml"),
    );
    let url = emilia.url("/pdd/PD/ClicLavoro");
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        peer(
            &py,
            &[
                "call-pd",
                wsdl.to_str().unwrap(),
                &url,
                candidatura.to_str().unwrap(),
                vacancy.to_str().unwrap(),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        v["services"],
        serde_json::json!({"PortaApplicativa": ["cliclavoroWS"], "PortaDelegata": ["cliclavoroWS"]}),
        "{out}"
    );
    assert_eq!(v["InvioCandidatura"], "OK", "{out}");
    assert!(
        v["InvioVacancy"] == "OK" || v["InvioVacancy"] == "KO",
        "{out}"
    );
    // The Ministry received both, each under its azione.
    let mut azioni: Vec<String> = ministero
        .gw
        .store
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.azione)
        .collect();
    azioni.sort();
    assert_eq!(azioni, ["InvioCandidatura", "InvioVacancy"], "{out}");
}
