//! The `pdd` binary as a user runs it: `serve` on embedded defaults answering `curl`, SIGTERM,
//! `trace list/show` (while running and after), `check` and its exit codes, config errors.

mod common;

use std::process::Command;

use common::TempDir;

fn pdd() -> Command {
    common::pdd_bin()
}

fn example_path(name: &str) -> String {
    format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The example request with a fresh Identificatore and OraRegistrazione, as the README does it.
fn fresh_example(dir: &TempDir) -> (String, std::path::PathBuf) {
    let now = chrono::Local::now();
    let id = format!(
        "EMILIA_EMILIASPCoopIT_{}_{}",
        now.format("0%H%M%S"),
        now.format("%Y-%m-%d_%H:%M")
    );
    let text = std::fs::read_to_string(example_path("richiesta-candidatura.xml"))
        .unwrap()
        .replace("EMILIA_EMILIASPCoopIT_0000001_2026-11-27_08:00", &id)
        .replace(
            "2026-11-27T08:00:00",
            &now.format("%Y-%m-%dT%H:%M:%S").to_string(),
        );
    let f = dir.0.join("req.xml");
    std::fs::write(&f, text).unwrap();
    (id, f)
}

#[test]
fn help_names_the_commands() {
    let out = pdd().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for w in [
        "serve", "check", "trace", "validate", "certs", "partner", "sign", "verify", "--config",
        "--data",
    ] {
        assert!(text.contains(w), "--help lacks {w}:\n{text}");
    }
}

#[test]
#[cfg_attr(pdd_no_curl, ignore = "curl is not installed (Debian curl)")]
fn serve_answers_curl_and_stops_on_sigterm() {
    common::require(common::Peer::Curl);
    let dir = TempDir::new("cli-serve");
    let data = dir.0.join("data");
    let gw = common::PddProcess::serve_data(&data);
    let addr = gw.addr.clone();
    let (id, req) = fresh_example(&dir);
    let out = Command::new("curl")
        .args([
            "-s",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: text/xml; charset=utf-8",
            "--data-binary",
        ])
        .arg(format!("@{}", req.display()))
        .arg(format!("http://{addr}/pdd/PA"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("\n200"), "{text}");
    assert!(
        text.contains("<types:Tipo_Risposta>OK</types:Tipo_Risposta>"),
        "{text}"
    );

    // While the gateway holds the store, trace reads through it.
    let list = pdd()
        .args(["trace", "list", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));

    let (code, log) = gw.terminate();
    assert!(code.success(), "exit status {code:?}");
    assert!(
        log.contains("SIGTERM received") && log.contains("stopped"),
        "{log}"
    );

    // And from the store itself once stopped.
    let show = pdd()
        .args(["trace", "show", &id, "--json", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["outcome"], "ok");
    assert_eq!(v["request_id"], id.as_str());
    assert!(v["response"]
        .as_str()
        .unwrap()
        .contains("RiferimentoMessaggio"));
    let missing = pdd()
        .args(["trace", "show", "nope", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn check_exit_codes() {
    let dir = TempDir::new("cli-check");
    let ok = pdd()
        .args(["check", "--now", "2026-11-27T08:01:00"])
        .arg(example_path("richiesta-candidatura.xml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("accepted"));

    // Six days later the same busta has expired.
    let late = pdd()
        .args(["check", "--json", "--now", "2026-12-03T08:01:00"])
        .arg(example_path("richiesta-candidatura.xml"))
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&late.stdout).unwrap();
    assert_eq!(v["eccezioni"][0]["codice"], "EGOV_IT_301");

    // An unknown sender.
    let text = std::fs::read_to_string(example_path("richiesta-candidatura.xml"))
        .unwrap()
        .replace(">EMILIA<", ">Nessuno<");
    let f = dir.0.join("unknown.xml");
    std::fs::write(&f, text).unwrap();
    let bad = pdd()
        .args(["check", "--now", "2026-11-27T08:01:00"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout)
        .contains("EGOV_IT_101 GRAVE Mittente/IdentificativoParte"));

    // No busta at all.
    let g = dir.0.join("garbage.xml");
    std::fs::write(&g, "hello").unwrap();
    let garbage = pdd().arg("check").arg(&g).output().unwrap();
    assert_eq!(garbage.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&garbage.stdout).contains("EGOV_IT_001"));

    // Unreadable file.
    let missing = pdd()
        .arg("check")
        .arg(dir.0.join("nope.xml"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn example_config_loads_and_bad_configs_are_explained() {
    let ok = pdd()
        .args([
            "--config",
            &example_path("pdd.toml"),
            "check",
            "--now",
            "2026-11-27T08:01:00",
        ])
        .arg(example_path("richiesta-candidatura.xml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = TempDir::new("cli-config");
    let f = dir.0.join("bad.toml");
    std::fs::write(&f, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let bad = pdd()
        .arg("--config")
        .arg(&f)
        .args(["trace", "list"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("unknown field") && err.contains("lisen"),
        "{err}"
    );

    let missing = pdd()
        .args(["--config", "/nonexistent/pdd.toml", "serve"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[test]
fn example_two_node_config_loads() {
    let out = pdd()
        .args([
            "--config",
            &example_path("emilia.toml"),
            "check",
            "--now",
            "2026-11-27T08:01:00",
        ])
        .arg(example_path("richiesta-candidatura.xml"))
        .output()
        .unwrap();
    // EMILIA's gateway is not the destinatario of a busta addressed to the Ministry.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("EGOV_IT_102"));
}

#[test]
fn validate_moduli() {
    // Valid moduli, bare and inside a SOAP message.
    let ok = pdd()
        .args(["validate", "--oggi", "2026-11-24"])
        .arg(example_path("moduli/candidatura-2.0.xml"))
        .arg(example_path("moduli/vacancy-rev038.xml"))
        .arg(example_path("richiesta-candidatura.xml"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout)
        .contains("richiesta-candidatura.xml: valid (candidatura 2.0)"));

    // An invalid one among them: exit 1, each problem as `path: message [code]`.
    let bad = pdd()
        .args(["validate", "--oggi", "2026-11-24"])
        .arg(example_path("moduli/candidatura-2.0.xml"))
        .arg(example_path(
            "moduli/invalidi/candidatura-2.0-cf-checkletter.xml",
        ))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("Candidatura/Lavoratore/DatiAnagrafici/codicefiscale: codice fiscale 'BNCLRA85M41F205D' non valido: carattere di controllo errato (atteso C) [CF_CONTROLLO]"),
        "{text}"
    );

    // JSON: one object per file, with the level of each problem.
    let json = pdd()
        .args(["validate", "--format", "json", "--oggi", "2026-11-24"])
        .arg(example_path(
            "moduli/invalidi/vacancy-2.0-descrizionericerca-2001.xml",
        ))
        .arg(example_path(
            "moduli/invalidi/vacancy-rev038-senza-telefono-fax.xml",
        ))
        .output()
        .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["valid"], false);
    assert_eq!(v[0]["problems"][0]["level"], "schema");
    assert_eq!(v[0]["problems"][0]["code"], "XSD_LUNGHEZZA");
    assert_eq!(
        v[0]["problems"][0]["path"],
        "Vacancy/Richiesta/ProfiloRichiesto/descrizionericerca"
    );
    assert_eq!(v[1]["problems"][0]["level"], "rule");
    assert_eq!(v[1]["problems"][0]["code"], "CONTATTO_DATORE_MANCANTE");

    // Unreadable input wins: exit 2.
    let missing = pdd()
        .args(["validate"])
        .arg(example_path("moduli/candidatura-2.0.xml"))
        .arg("/nonexistent/modulo.xml")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
