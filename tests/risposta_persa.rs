//! The origin does not forget what the network has: EMILIA's local system publishes a CV
//! through EMILIA's porta delegata, and the NCN dies (SIGKILL) after making the exchange durable
//! and before answering. EMILIA's record says the outcome is unknown (`pdd trace list`), the
//! local system gets EGOV_IT_300 telling it to resend, and its identical resend — once the NCN is
//! back — is answered OK, after which EMILIA holds the CV too.

mod common;

use common::{eventually_blocking, free_port, http, pdd_cli, On, PddProcess, TempDir, CT_XML};
use pdd::modulo::ws;

fn codici(porta: u16) -> Vec<String> {
    let (s, body) = http(
        ([127, 0, 0, 1], porta).into(),
        "GET",
        "/api/candidature?per_pagina=100",
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["risultati"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["codice"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_answer_lost_to_a_dying_receiver_is_recorded_as_unknown_and_a_resend_completes_it() {
    let dir = TempDir::new("risposta-persa");
    let (p_ncn, p_emilia) = (free_port(), free_port());
    let f_ncn = common::config_nodo(
        &dir.0,
        "ncn",
        "MinisteroLavoro",
        "ncn",
        p_ncn,
        &[("EMILIA", p_emilia)],
    );
    let f_emilia = common::config_nodo(
        &dir.0,
        "emilia",
        "EMILIA",
        "nr",
        p_emilia,
        &[("MinisteroLavoro", p_ncn)],
    );
    // The NCN dies right after its first exchange is durable, before answering it.
    let ncn = PddProcess::serve_config_env(&f_ncn, &[("PDD_TEST_KILL_AFTER_COMMIT", "1")]);
    let emilia = PddProcess::serve_config(&f_emilia);

    let xml = common::example("moduli/candidatura-rev038.xml");
    let codice = common::text_of(&xml, "codicecandidatura")
        .unwrap()
        .to_string();
    let op = ws::operazione("InvioCandidatura").unwrap();
    let richiesta = pdd::soap::envelope(&[], &ws::richiesta(op, &xml));
    let invia = || {
        http(
            ([127, 0, 0, 1], p_emilia).into(),
            "POST",
            "/pdd/PD/ClicLavoro/InvioCandidatura",
            &[CT_XML],
            richiesta.as_bytes(),
        )
        .unwrap()
    };
    let (s, body) = invia();
    assert_eq!(s, 500, "{body}");
    assert!(
        body.contains("EGOV_IT_300") && body.contains("reinviare la stessa richiesta"),
        "{body}"
    );
    let (stato, _) = ncn.wait_exit("the NCN dies after its commit");
    assert_eq!(stato, None, "killed by a signal");

    // EMILIA says it does not know how it ended.
    let (code, out, err) = pdd_cli(
        On::Config(&f_emilia),
        &["trace", "list", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let uscita = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "out")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(uscita["outcome"], "sconosciuto", "{uscita}");

    // The NCN is back: it holds the CV, EMILIA does not yet.
    let ncn = PddProcess::serve_config(&f_ncn);
    assert!(codici(p_ncn).contains(&codice), "the NCN committed it");
    assert!(!codici(p_emilia).contains(&codice));
    // The local system resends the same request, as told: OK, and EMILIA keeps its copy.
    let (s, body) = invia();
    assert_eq!(s, 200, "{body}");
    assert!(
        body.contains("<types:Tipo_Risposta>OK</types:Tipo_Risposta>") && body.contains("identica"),
        "{body}"
    );
    eventually_blocking("EMILIA holds its CV", || codici(p_emilia).contains(&codice));
    drop(ncn);
    drop(emilia);
}
