//! `pdd trace export` and `pdd diag list` as an operator runs them, against real gateways on
//! loopback (through their admin endpoints while they run, on the store once stopped): CNIPA
//! traces valid against `Tracciamento.xsd` for a synchronous exchange, an error busta and a
//! porta delegata exchange, a period chosen with `--since`/`--until`; diagnostics of refusals,
//! porta delegata failures, outbox retries, start and stop, filtered by time and severity,
//! without personal data.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{eventually, have, post, start, text_of, Req, Running};
use pdd::config::Config;
use pdd::registry::Soggetto;
use pdd::rete::Ruolo;

/// Runs `pdd ARGS --data DATA`: (exit code, stdout, stderr).
async fn pdd(data: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = common::pdd_bin();
    c.args(args).arg("--data").arg(data);
    let out = tokio::task::spawn_blocking(move || c.output().expect("pdd runs"))
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Tells the CLI where the in-process gateway answers (what `pdd serve` writes).
fn annuncia(gw: &Running) -> std::path::PathBuf {
    let data = gw.gw.config.data.clone();
    std::fs::write(data.join("listen.addr"), gw.addr.to_string()).unwrap();
    data
}

/// The documents of a cnipa export, each with its XML declaration.
fn documenti(out: &str) -> Vec<String> {
    out.split("<?xml ")
        .filter(|d| !d.trim().is_empty())
        .map(|d| format!("<?xml {d}"))
        .collect()
}

/// Tracciamento.xsd, with xmllint to check against it; None (said once) when either is missing.
fn schema() -> Option<std::path::PathBuf> {
    if !have(common::Peer::Xsd) || !have(common::Peer::Xmllint) {
        return None;
    }
    Some(common::xsd().join("Tracciamento.xsd"))
}

fn valida(docs: &[String], schema: Option<&Path>) {
    for d in docs {
        assert!(d.contains("<eGov_IT_Trac:traccia "), "{d}");
        if let Some(s) = schema {
            common::xmllint(d, s).unwrap_or_else(|e| panic!("{e}\n{d}"));
        }
    }
}

fn ora() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
}

/// EMILIA's gateway, whose registry knows the Ministry's porta applicativa.
fn emilia(ministry_pa: &str) -> Config {
    let mut c = Config::default();
    c.soggetto.nome = "EMILIA".into();
    let mut m = Soggetto::new("SPC", "MinisteroLavoro");
    m.url = Some(ministry_pa.to_string());
    c.registry.soggetti.push(m);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cnipa_traces_of_a_sync_exchange_an_error_busta_and_a_porta_delegata_exchange() {
    let schema = schema();
    let schema = schema.as_deref();
    let ministry = start(Config::default()).await;
    let region = start(emilia(&ministry.url("/pdd/PA"))).await;
    let (dm, de) = (annuncia(&ministry), annuncia(&region));

    // A synchronous exchange answered OK.
    let ok = Req::candidatura();
    let r = post(&ministry.url("/pdd/PA"), ok.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dopo_ok = ora();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A busta refused with an error busta (unknown azione).
    let ko = Req::new(
        "EMILIA",
        "MinisteroLavoro",
        "ClicLavoro",
        Some("InvioBozza"),
        "<x/>".into(),
    );
    let r = post(&ministry.url("/pdd/PA"), ko.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    // A porta delegata exchange: EMILIA's local system to the Ministry.
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioCandidatura"),
        common::example("invio-candidatura-sil.xml").into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let pd_id = r
        .headers
        .iter()
        .find(|(k, _)| k == "x-pdd-riferimentomessaggio")
        .map(|(_, v)| v.clone())
        .unwrap();

    // The synchronous exchange: its request and its response, through the running gateway.
    let (code, out, err) = pdd(&dm, &["trace", "export", &ok.id]).await;
    assert_eq!(code, 0, "{err}");
    let docs = documenti(&out);
    assert_eq!(docs.len(), 2, "{out}");
    valida(&docs, schema);
    assert_eq!(text_of(&docs[0], "TipoMessaggio"), Some("Richiesta"));
    assert_eq!(text_of(&docs[1], "TipoMessaggio"), Some("Risposta"));
    for d in &docs {
        assert_eq!(
            text_of(d, "IdentificativoPorta"),
            Some("MinisteroLavoroSPCoopIT")
        );
        chrono::DateTime::parse_from_rfc3339(text_of(d, "GDO").unwrap()).expect("GDO");
    }
    assert_eq!(text_of(&docs[0], "Identificatore"), Some(ok.id.as_str()));
    assert_eq!(
        text_of(&docs[1], "RiferimentoMessaggio"),
        Some(ok.id.as_str())
    );
    assert!(
        docs[1].contains("<eGov_IT:ListaTrasmissioni>"),
        "{}",
        docs[1]
    );

    // The error busta, its ListaEccezioni traced.
    let (code, out, err) = pdd(&dm, &["trace", "export", &ko.id, "--format", "cnipa"]).await;
    assert_eq!(code, 0, "{err}");
    let docs = documenti(&out);
    assert_eq!(docs.len(), 2, "{out}");
    valida(&docs, schema);
    assert!(
        docs[1].contains(r#"codiceEccezione="EGOV_IT_106""#),
        "{}",
        docs[1]
    );
    assert_eq!(
        text_of(&docs[1], "RiferimentoMessaggio"),
        Some(ko.id.as_str())
    );

    // The porta delegata exchange, as EMILIA traced it.
    let emilia_toml = format!("{}/examples/emilia.toml", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = pdd(&de, &["--config", &emilia_toml, "trace", "export", &pd_id]).await;
    assert_eq!(code, 0, "{err}");
    let docs = documenti(&out);
    assert_eq!(docs.len(), 2, "{out}");
    valida(&docs, schema);
    for d in &docs {
        assert_eq!(text_of(d, "IdentificativoPorta"), Some("EMILIASPCoopIT"));
    }
    assert_eq!(text_of(&docs[0], "Identificatore"), Some(pd_id.as_str()));
    let (code, out, _) = pdd(&de, &["trace", "export", &pd_id, "--format", "json"]).await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let fasi: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fase"].as_str().unwrap())
        .collect();
    assert_eq!(fasi, ["RichiestaUscita", "RispostaIngresso"]);
    assert_eq!(v[0]["busta"]["id"], pd_id.as_str());

    // A period: from after the first exchange on, the error busta and the Ministry's side of
    // the porta delegata exchange; before it, the first alone.
    let (code, out, err) = pdd(&dm, &["trace", "export", "--since", &dopo_ok]).await;
    assert_eq!(code, 0, "{err}");
    let docs = documenti(&out);
    assert_eq!(docs.len(), 4, "{out}");
    valida(&docs, schema);
    assert!(!out.contains(&ok.id));
    assert!(out.contains(&ko.id) && out.contains(&pd_id));
    let (code, out, err) = pdd(
        &dm,
        &[
            "trace",
            "export",
            "--since",
            "2000-01-01",
            "--until",
            &dopo_ok,
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(documenti(&out).len(), 2, "{out}");
    assert!(out.contains(&ok.id) && !out.contains(&ko.id));
    // An unknown exchange; neither an exchange nor a period.
    let (code, _, _) = pdd(&dm, &["trace", "export", "nope"]).await;
    assert_eq!(code, 1);
    let (code, _, _) = pdd(&dm, &["trace", "export"]).await;
    assert_eq!(code, 2);

    // Stopped, from the store itself, one file per trace.
    let dir = ministry.stop().await;
    let cartella = dir.0.join("tracce");
    std::fs::create_dir_all(&cartella).unwrap();
    // The store's lock goes a moment after the gateway.
    eventually(
        "trace export from the stopped gateway's store",
        async || {
            let (code, _, _) = pdd(
                &dm,
                &[
                    "trace",
                    "export",
                    "--since",
                    "2000-01-01",
                    "--out",
                    cartella.to_str().unwrap(),
                ],
            )
            .await;
            code == 0
        },
    )
    .await;
    let mut files: Vec<String> = std::fs::read_dir(&cartella)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    assert!(files[0].ends_with("-richiesta.xml") && files[1].ends_with("-risposta.xml"));
    let docs: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(cartella.join(f)).unwrap())
        .collect();
    valida(&docs, schema);
    drop(dir);
}

/// The diagnostics of a store, as `pdd diag list --json ARGS` prints them.
async fn diag(data: &Path, args: &[&str]) -> Vec<serde_json::Value> {
    let mut a = vec!["diag", "list", "--json"];
    a.extend_from_slice(args);
    let (code, out, err) = pdd(data, &a).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn codici(list: &[serde_json::Value]) -> Vec<&str> {
    list.iter().map(|d| d["codice"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnostics_of_refusals_failures_and_retries_with_filters() {
    let ministry = start(Config::default()).await;
    let dm = annuncia(&ministry);
    // Not a SOAP message: a bare Fault.
    let r = post(&ministry.url("/pdd/PA"), b"not xml".to_vec(), &[]).await;
    assert_eq!(r.status, 500);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dopo_fault = ora();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A candidatura, then the same busta again: a duplicate refused (the modulo, with its
    // codice fiscale and e-mail addresses, goes nowhere near the diagnostics).
    let cv = Req::candidatura();
    let r = post(&ministry.url("/pdd/PA"), cv.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(&ministry.url("/pdd/PA"), cv.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);
    // An unknown Mittente.
    let ignoto = Req::new(
        "Sconosciuto",
        "MinisteroLavoro",
        "ClicLavoro",
        Some("InvioCandidatura"),
        "<x/>".into(),
    );
    let r = post(&ministry.url("/pdd/PA"), ignoto.xml().into_bytes(), &[]).await;
    assert_eq!(r.status, 500, "{}", r.body);

    let tutti = diag(&dm, &[]).await;
    let c = codici(&tutti);
    assert_eq!(c.first(), Some(&"PDD_AVVIO"), "{tutti:?}");
    assert!(
        c.contains(&"EGOV_IT_001") && c.contains(&"EGOV_IT_110") && c.contains(&"EGOV_IT_101"),
        "{tutti:?}"
    );
    let dup = tutti.iter().find(|d| d["codice"] == "EGOV_IT_110").unwrap();
    assert_eq!(dup["severita"], "errorProtocol");
    assert_eq!(dup["livello"], 1);
    assert_eq!(dup["funzione"], "RicezioneBuste");
    assert_eq!(dup["id"], cv.id.as_str());
    assert!(dup["seq"].as_u64().is_some());
    for d in &tutti {
        let m = d["messaggio"].as_str().unwrap();
        assert!(
            !m.contains("BNCLRA85M41F205C") && !m.contains('@') && !m.contains("BIANCHI"),
            "{m}"
        );
    }
    // Severity errorProtocol and above: the refusals, not the start.
    let errori = diag(&dm, &["--severity", "errorProtocol"]).await;
    assert!(!codici(&errori).contains(&"PDD_AVVIO"), "{errori:?}");
    assert!(errori.iter().all(|d| d["livello"].as_u64().unwrap() <= 1));
    assert_eq!(errori.len(), 3, "{errori:?}");
    // From after the Fault on.
    let dopo = diag(&dm, &["--since", &dopo_fault, "--severity", "1"]).await;
    assert_eq!(codici(&dopo), ["EGOV_IT_110", "EGOV_IT_101"], "{dopo:?}");
    // The table.
    let (code, out, _) = pdd(&dm, &["diag", "list", "--severity", "error_protocol"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("TIME"), "{out}");
    assert!(
        out.contains("errorProtocol (1)") && out.contains("EGOV_IT_110"),
        "{out}"
    );
    let (code, _, err) = pdd(&dm, &["diag", "list", "--severity", "grave"]).await;
    assert_eq!(code, 2, "{err}");

    // A porta delegata whose partner is down: errorIntegration, with the exchange.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let morto = format!("http://{}/pdd/PA", dead.local_addr().unwrap());
    drop(dead);
    let region = start(emilia(&morto)).await;
    let de = annuncia(&region);
    let r = post(
        &region.url("/pdd/PD/ClicLavoro/InvioCandidatura"),
        common::example("invio-candidatura-sil.xml").into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 500);
    let l = diag(&de, &["--severity", "errorIntegration"]).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0]["funzione"], "InoltroBuste");
    assert_eq!(l[0]["codice"], "EGOV_IT_300");
    assert_eq!(l[0]["severita"], "errorIntegration");
    assert!(l[0]["id"]
        .as_str()
        .unwrap()
        .starts_with("EMILIA_EMILIASPCoopIT_"));
    assert!(
        l[0]["messaggio"]
            .as_str()
            .unwrap()
            .contains("verso SPC/MinisteroLavoro"),
        "{l:?}"
    );
    let _ = region.stop().await;

    // The NCN's outbox, its receiver down: each retry said.
    let mut c = Config {
        role: Ruolo::Ncn,
        ..Default::default()
    };
    c.outbox.retry_min_secs = 1;
    c.outbox.retry_max_secs = 1;
    let mut lazio = Soggetto::new("SPC", "LAZIO");
    lazio.url = Some(morto.clone());
    c.registry.soggetti.push(lazio);
    let ncn = start(c).await;
    let dn = annuncia(&ncn);
    let r = post(
        &ncn.url("/pdd/PA"),
        Req::candidatura().xml().into_bytes(),
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut riprova = None;
    eventually("an Outbox diagnostic about SPC/LAZIO", async || {
        let l = diag(&dn, &[]).await;
        riprova = l
            .iter()
            .find(|d| {
                d["funzione"] == "Outbox" && d["messaggio"].as_str().unwrap().contains("SPC/LAZIO")
            })
            .cloned();
        riprova.is_some()
    })
    .await;
    let riprova = riprova.unwrap();
    assert_eq!(riprova["severita"], "infoIntegration");
    assert_eq!(riprova["codice"], "EGOV_IT_300");
    let m = riprova["messaggio"].as_str().unwrap();
    assert!(
        m.contains("a SPC/LAZIO") && m.contains("nuovo tentativo"),
        "{m}"
    );
    let _ = ncn.stop().await;

    // Stopped: the stop is recorded, and read from the store itself.
    let dir = ministry.stop().await;
    let mut fine = String::new();
    eventually("diag list from the stopped gateway's store", async || {
        let (code, out, _) = pdd(&dm, &["diag", "list", "--json", "-n", "1"]).await;
        fine = out;
        code == 0
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&fine).unwrap();
    assert_eq!(v[0]["codice"], "PDD_ARRESTO", "{v}");
    assert_eq!(v[0]["severita"], "infoIntegration");
    drop(dir);
}
