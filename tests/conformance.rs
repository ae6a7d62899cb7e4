//! Conformance over GovWay's SPCoop test files (`../shared/conformance/spcoop/govway-testfiles`):
//! every file is posted to the real server and its answer compared with the table in
//! `tests/conformance/expected.toml` (busta-egov.md §6). The files are prepared as GovWay's own
//! harness prepares them: the Identificatore and the OraRegistrazione are set to now.
//!
//! Two runs: with structural header errors answered by an error busta (the table's mode), and
//! with GovWay's default (a bare Fault EGOV_IT_001), where every `structural` case must get it.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use pdd::config::Config;
use pdd::egov::reader::{self, Lettura};
use pdd::egov::{Codice, Eccezione, Rilevanza, FAULT_VALIDAZIONE};
use pdd::registry::{Azione, ErroriStruttura, Servizio, Soggetto};
use pdd::soap::Envelope;
use pdd::xml::Limits;
use serde::Deserialize;

#[derive(Deserialize, Debug)]
struct Table {
    case: Vec<Case>,
}

#[derive(Deserialize, Debug, Clone)]
struct Case {
    file: String,
    answer: String,
    #[serde(default)]
    eccezioni: Vec<Ecc>,
    #[serde(default = "one")]
    sends: u32,
    #[serde(default)]
    structural: bool,
    #[serde(default)]
    id_owner: Option<String>,
    #[serde(default)]
    rewrite_ora: bool,
    #[serde(default)]
    raw: bool,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize, Debug, Clone)]
struct Ecc {
    codice: String,
    rilevanza: String,
    posizione: String,
    #[serde(default)]
    posizione_alt: Option<String>,
    #[serde(default)]
    r#where: Option<String>,
}

/// The registry of the GovWay testsuite, from `tests/conformance/registry.toml`.
fn config(mode: ErroriStruttura) -> Config {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/registry.toml"),
    )
    .expect("registry.toml");
    let t: toml::Table = text.parse().expect("registry.toml parses");
    let s = |v: &toml::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let mut c = Config::default();
    c.soggetto.nome = "OpenSPCoop2".into();
    c.registry.demo = false;
    c.busta.errori_struttura = mode;
    // GovWay's default profile (a sender not in the registry is judged by it).
    c.busta.profilo = pdd::egov::ProfiloGestione::EGov11;
    for v in t["soggetti"].as_array().expect("soggetti") {
        let mut so = Soggetto::new(&s(v, "tipo").unwrap(), &s(v, "nome").unwrap());
        so.porta = s(v, "porta").unwrap();
        so.profilo = match s(v, "profilo").as_deref() {
            Some("lineeGuida1.1") => pdd::egov::ProfiloGestione::LineeGuida11,
            _ => pdd::egov::ProfiloGestione::EGov11,
        };
        // Every soggetto of the testsuite is hosted on the PdD under test.
        so.locale = true;
        c.registry.soggetti.push(so);
    }
    for v in t["servizi"].as_array().expect("servizi") {
        let profilo = |x: &toml::Value| s(x, "profilo").and_then(|p| pdd::egov::Profilo::parse(&p));
        c.registry.servizi.push(Servizio {
            tipo: s(v, "tipo").unwrap(),
            nome: s(v, "nome").unwrap(),
            erogatore: s(v, "erogatore").unwrap(),
            profilo: profilo(v).expect("profilo"),
            azione_obbligatoria: v
                .get("azione_obbligatoria")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            azioni: v["azioni"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| Azione {
                    nome: s(a, "nome").unwrap(),
                    profilo: profilo(a),
                    correlata: None,
                })
                .collect(),
            fruitori: Vec::new(),
            filtro_duplicati: true,
            backend: None,
            handler: Some("echo".into()),
            correlato: None,
        });
    }
    c
}

/// Sets the Identificatore and OraRegistrazione to now, as GovWay's test harness does.
fn prepare(src: &str, c: &Case, n: u32) -> String {
    let now = chrono::Local::now();
    let mut s = src.to_string();
    if let Some(owner) = &c.id_owner {
        if let Some(m) = s.find("<eGov_IT:Messaggio") {
            let open = "<eGov_IT:Identificatore>";
            if let Some(i) = s[m..].find(open).map(|i| i + m + open.len()) {
                if let Some(j) = s[i..].find("</eGov_IT:Identificatore>").map(|j| j + i) {
                    let id = format!("{owner}_9{n:06}_{}", now.format("%Y-%m-%d_%H:%M"));
                    s.replace_range(i..j, &id);
                }
            }
        }
    }
    if c.rewrite_ora {
        if let Some(i) = s.find("<eGov_IT:OraRegistrazione") {
            if let Some(gt) = s[i..].find('>').map(|g| g + i) {
                if &s[gt - 1..gt] != "/" {
                    if let Some(j) = s[gt..].find("</eGov_IT:OraRegistrazione>").map(|j| j + gt) {
                        s.replace_range(
                            gt + 1..j,
                            &now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
                        );
                    }
                }
            }
        }
    }
    s
}

/// What came back, reduced to what the table speaks of.
#[derive(Debug)]
#[allow(
    dead_code,
    reason = "fields are read through Debug in failure messages"
)]
enum Got {
    Fault001,
    Busta(Vec<Eccezione>),
    Ok {
        eccezioni: Vec<Eccezione>,
        body_empty: bool,
    },
    Other(String),
}

fn classify(status: u16, body: &str) -> Got {
    if body.trim().is_empty() {
        return if status == 200 {
            Got::Ok {
                eccezioni: vec![],
                body_empty: true,
            }
        } else {
            Got::Other(format!("HTTP {status} with an empty body"))
        };
    }
    let env = match Envelope::parse(body.as_bytes(), Limits::default()) {
        Ok(e) => e,
        Err(e) => return Got::Other(format!("HTTP {status}, unreadable answer: {e}")),
    };
    let busta = match reader::leggi(&env.header_blocks) {
        Lettura::Trovata(t) => Some(t),
        Lettura::Assente => None,
    };
    match (&env.fault, busta) {
        (Some(f), None) => {
            if status == 500 && f.code == "soap:Client" && f.string == FAULT_VALIDAZIONE {
                Got::Fault001
            } else {
                Got::Other(format!("HTTP {status} Fault {} {}", f.code, f.string))
            }
        }
        (Some(f), Some(t)) => {
            if status == 500
                && f.code == "soap:Client"
                && f.string == FAULT_VALIDAZIONE
                && t.problemi.is_empty()
            {
                Got::Busta(t.busta.eccezioni.unwrap_or_default())
            } else {
                Got::Other(format!(
                    "HTTP {status} error busta with Fault {} {} / {:?}",
                    f.code, f.string, t.problemi
                ))
            }
        }
        (None, Some(t)) if status == 200 => Got::Ok {
            eccezioni: t.busta.eccezioni.unwrap_or_default(),
            body_empty: false,
        },
        (None, _) => Got::Other(format!("HTTP {status} without a busta")),
    }
}

type Key = (String, String, String);

fn key(e: &Eccezione) -> Key {
    (
        e.codice.to_string(),
        e.rilevanza.as_str().to_string(),
        e.posizione.clone(),
    )
}

fn multiset(v: impl IntoIterator<Item = Key>) -> BTreeMap<Key, usize> {
    let mut m = BTreeMap::new();
    for k in v {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// Compares eccezioni as multisets; an expected posizione_alt is accepted in place of posizione.
fn same(expected: &[&Ecc], got: &[Eccezione]) -> bool {
    let alt: Vec<Key> = expected
        .iter()
        .map(|e| {
            let pos = match &e.posizione_alt {
                Some(a) if got.iter().any(|g| &g.posizione == a) => a.clone(),
                _ => e.posizione.clone(),
            };
            (e.codice.clone(), e.rilevanza.clone(), pos)
        })
        .collect();
    multiset(alt) == multiset(got.iter().map(key))
}

async fn run(mode: ErroriStruttura, files: &Path, cases: &[Case]) -> (usize, Vec<String>) {
    let gw = common::start(config(mode)).await;
    let url = gw.url("/pdd/PA");
    let mut failures = Vec::new();
    let mut n = 0;
    for (i, c) in cases.iter().enumerate() {
        let src = std::fs::read(files.join(&c.file)).expect("test file");
        let body = if c.raw {
            src
        } else {
            prepare(&String::from_utf8_lossy(&src), c, i as u32 + 1).into_bytes()
        };
        // The answer expected in this run.
        let answer = if mode == ErroriStruttura::Fault && c.structural {
            "fault001"
        } else {
            c.answer.as_str()
        };
        let mut reply = common::post(&url, body.clone(), &[]).await;
        if c.sends > 1 {
            // The first send must be processed; the listed answer is the second's.
            match classify(reply.status, &reply.body) {
                Got::Ok { .. } => {}
                other => failures.push(format!("{} [{mode:?}] first send: {other:?}", c.file)),
            }
            reply = common::post(&url, body.clone(), &[]).await;
        }
        let got = classify(reply.status, &reply.body);
        if c.sends > 1 {
            // Either way the service ran once: the repeat is recorded as a duplicate.
            let last = gw.gw.store.recent(1).await.expect("store");
            if last.first().map(|e| e.outcome) != Some(pdd::store::Outcome::Duplicato) {
                failures.push(format!(
                    "{} [{mode:?}]: the repeat was not recorded as a duplicate",
                    c.file
                ));
            }
        }
        // Eccezioni that GovWay only logs must be in our trace of the exchange.
        let diag: Vec<&Ecc> = c.eccezioni.iter().filter(|e| e.r#where.is_some()).collect();
        if !diag.is_empty() && answer == "ok" {
            let last = gw.gw.store.recent(1).await.expect("store");
            let traced: Vec<Key> = last
                .first()
                .map(|e| e.eccezioni.iter().map(key).collect())
                .unwrap_or_default();
            for d in &diag {
                let k = (d.codice.clone(), d.rilevanza.clone(), d.posizione.clone());
                if !traced.contains(&k) {
                    failures.push(format!(
                        "{} [{mode:?}]: {k:?} not in the trace {traced:?}",
                        c.file
                    ));
                }
            }
        }
        let in_answer: Vec<&Ecc> = c.eccezioni.iter().filter(|e| e.r#where.is_none()).collect();
        let ok = match (answer, &got) {
            ("fault001", Got::Fault001) => true,
            ("busta", Got::Busta(e)) => same(&in_answer, e),
            (
                "ok",
                Got::Ok {
                    eccezioni,
                    body_empty,
                },
            ) => {
                // INFO eccezioni ride in a response busta; a oneway answer is empty and keeps
                // them in the trace only.
                (*body_empty
                    && (in_answer.is_empty() || in_answer.iter().all(|e| e.rilevanza == "INFO")))
                    || same(&in_answer, eccezioni)
            }
            _ => false,
        };
        if ok {
            n += 1;
        } else {
            failures.push(format!(
                "{} [{mode:?}]: expected {answer} {:?}, got {got:?}",
                c.file,
                in_answer
                    .iter()
                    .map(|e| format!("{} {} {}", e.codice, e.rilevanza, e.posizione))
                    .collect::<Vec<_>>()
            ));
        }
    }
    gw.stop().await;
    (n, failures)
}

/// The expected answers (`tests/conformance/expected.toml`).
fn tabella() -> Table {
    toml::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance/expected.toml"),
        )
        .expect("expected.toml"),
    )
    .expect("expected.toml parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    pdd_no_govway,
    ignore = "GovWay's SPCoop test files are absent (../shared/conformance/spcoop/govway-testfiles; PDD_GOVWAY_TESTFILES, PDD_SHARED)"
)]
async fn govway_testfiles() {
    common::require(common::Peer::Govway);
    let files = common::govway_testfiles();
    let table = tabella();
    // Every file of the four folders has an entry, and every entry a file.
    for dir in [
        "buste_errate",
        "buste_campi_duplicati",
        "buste_con_eccezioni",
        "buste_linee_guida_1.1",
    ] {
        for f in std::fs::read_dir(files.join(dir)).expect("folder") {
            let name = format!("{dir}/{}", f.expect("entry").file_name().to_string_lossy());
            assert!(
                table.case.iter().any(|c| c.file == name),
                "{name} has no entry in expected.toml"
            );
        }
    }
    let total = table.case.len();
    let (busta_ok, mut failures) = run(ErroriStruttura::Busta, &files, &table.case).await;
    let (fault_ok, f2) = run(ErroriStruttura::Fault, &files, &table.case).await;
    failures.extend(f2);
    eprintln!(
        "conformance: {busta_ok} of {total} files as expected with structural errors answered by an error busta; \
         {fault_ok} of {total} with GovWay's default (bare Fault EGOV_IT_001)"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn codes_and_levels_parse() {
    // The table's vocabulary is the project's.
    assert_eq!(
        Codice::parse("EGOV_IT_116"),
        Some(Codice::LISTA_TRASMISSIONI)
    );
    assert_eq!(Rilevanza::parse("LIEVE"), Some(Rilevanza::Lieve));
}

/// With `[busta] qualificazione` (the DigitPA qualification lists every fault), the INFO
/// eccezione of the ListaRiscontri rides beside the GRAVE one that GovWay answers alone.
#[tokio::test]
#[cfg_attr(
    pdd_no_govway,
    ignore = "GovWay's SPCoop test files are absent (PDD_GOVWAY_TESTFILES, PDD_SHARED)"
)]
async fn qualification_mode_reports_info_beside_grave() {
    common::require(common::Peer::Govway);
    let files = common::govway_testfiles();
    let table = tabella();
    let file = "buste_linee_guida_1.1/bustaRiscontroTempoDiversoSPC.xml";
    let c = table
        .case
        .iter()
        .find(|c| c.file == file)
        .expect("its case");
    let mut config = config(ErroriStruttura::Busta);
    config.busta.qualificazione = true;
    let gw = common::start(config).await;
    let src = std::fs::read_to_string(files.join(file)).expect("test file");
    let reply = common::post(&gw.url("/pdd/PA"), prepare(&src, c, 1).into_bytes(), &[]).await;
    let Got::Busta(got) = classify(reply.status, &reply.body) else {
        panic!("{}", reply.body)
    };
    let codici: Vec<(String, String)> = got
        .iter()
        .map(|e| (e.codice.to_string(), format!("{:?}", e.rilevanza)))
        .collect();
    assert!(
        codici.contains(&("EGOV_IT_115".into(), "Grave".into()))
            && codici.contains(&("EGOV_IT_115".into(), "Info".into())),
        "{codici:?}"
    );
}
