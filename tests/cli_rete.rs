//! The network's commands on a stopped gateway's store (the running case is in network.rs):
//! import with refused lines, users, an empty outbox, EURES export of nothing.

mod common;

use common::{pdd_cli, On, TempDir};

#[test]
fn network_commands_work_on_the_store_directly() {
    let dir = TempDir::new("cli-rete");
    let data = dir.0.join("data");
    let pdd = |args: &[&str]| pdd_cli(On::Data(&data), args);
    let csv = dir.0.join("r.csv");
    std::fs::write(
        &csv,
        "codice_fiscale,qualifica,data_inizio,data_fine\n\
         RSSMRA80A01H501U,5.1.2.2.0,2015-02-01,2020-01-31\n\
         RSSMRA80A01H501U,5.1.2.2.1,2021-03-01,\n\
         BNCNNA92L55F205P,2.1.1.4.1,2019-09-01,2018-01-01\n",
    )
    .unwrap();
    let (code, out, err) = pdd(&["import", "ultimi-rapporti", csv.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("3 records read, 2 stored, 1 refused"), "{out}");
    assert!(
        err.contains("line 4: data_fine precede data_inizio"),
        "{err}"
    );
    let (code, _, err) = pdd(&["import", "ultimi-rapporti", "/nonexistent.csv"]);
    assert_eq!(code, 2, "{err}");

    let (code, token, err) = pdd(&["users", "add", "portale"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(token.trim().len(), 48, "{token}");
    let (code, _, err) = pdd(&["users", "add", "portale"]);
    assert_ne!(code, 0);
    assert!(err.contains("esiste già"), "{err}");
    let (_, list, _) = pdd(&["users", "list", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["nome"], "portale");
    assert!(!list.contains(token.trim()), "the token is not stored");
    let (code, _, _) = pdd(&["users", "remove", "portale"]);
    assert_eq!(code, 0);
    let (code, _, err) = pdd(&["users", "remove", "portale"]);
    assert_ne!(code, 0);
    assert!(err.contains("no user"), "{err}");

    let (code, out, _) = pdd(&["outbox", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("outbox empty"), "{out}");
    // Nothing to queue again (an empty store batch).
    let (code, out, err) = pdd(&["outbox", "retry"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 forward(s) queued again"), "{out}");
    let (code, out, _) = pdd(&["eures", "export", dir.0.join("eu").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("0 EURES document(s)"), "{out}");
}
