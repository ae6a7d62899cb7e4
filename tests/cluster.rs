//! Several `pdd serve` on one PostgreSQL database behave as one Porta di Dominio: one
//! duplicate filter, Identificatori that carry the node number and never repeat, one node
//! number per live node, the whole cluster's exchanges seen from any node. Real processes, a
//! real private PostgreSQL server (kit::postgres), real HTTP on loopback.

mod common;

use std::path::{Path, PathBuf};

use common::{http, text_of, PddProcess, Req, CT_XML};
use pdd::kit::postgres::{PgSettings, Postgres};
use pdd::kit::TempDir;

fn server(tag: &str) -> Postgres {
    common::require(common::peers::Peer::Postgres);
    Postgres::start(
        tag,
        PgSettings {
            durable: false,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("a private PostgreSQL: {e}"))
}

/// A node's configuration file in `dir`: the default gateway on a free port, its store the
/// shared database.
fn node(dir: &Path, url: &str, nome: &str, numero: u8) -> PathBuf {
    let f = dir.join(format!("{nome}.toml"));
    std::fs::write(
        &f,
        format!(
            "listen = \"127.0.0.1:0\"\ndata = \"{nome}-data\"\n\n[store]\nengine = \"postgres\"\nurl = \"{url}\"\npool = 4\n\n[cluster]\nnode = \"{nome}\"\nnumero = {numero}\n"
        ),
    )
    .unwrap();
    f
}

/// The serial of an Identificatore (`CodAmm_CodPdD_serial_date_time`).
fn serial(id: &str) -> &str {
    id.split('_').nth(2).unwrap_or("")
}

fn post(addr: &str, body: &[u8]) -> (u16, String) {
    http(addr.parse().unwrap(), "POST", "/pdd/PA", &[CT_XML], body).expect("an answer")
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
fn two_nodes_share_one_duplicate_filter_and_number_their_identificatori() {
    let pg = server("cluster-dup");
    let url = pg.url_in_schema("cluster").unwrap();
    let dir = TempDir::new("cluster");
    let uno = PddProcess::serve_config(&node(dir.path(), &url, "ncn-1", 1));
    let due = PddProcess::serve_config(&node(dir.path(), &url, "ncn-2", 2));
    // Logged before listening (spawning waits for that line).
    assert!(uno.log.join("\n").contains("cluster node ncn-1 (number 1)"));
    assert!(due.log.join("\n").contains("cluster node ncn-2 (number 2)"));

    // Accepted by one node: a duplicate at the other.
    let req = Req::candidatura().xml();
    let (s1, b1) = post(&uno.addr, req.as_bytes());
    assert_eq!(s1, 200, "{b1}");
    assert_eq!(text_of(&b1, "Tipo_Risposta"), Some("OK"), "{b1}");
    let (s2, b2) = post(&due.addr, req.as_bytes());
    assert_eq!(s2, 500, "{b2}");
    assert!(b2.contains("EGOV_IT_110"), "{b2}");
    // Each node's Identificatori start with its number, two digits.
    let id1 = text_of(&b1, "Identificatore").unwrap().to_string();
    let id2 = text_of(&b2, "Identificatore").unwrap().to_string();
    assert!(serial(&id1).starts_with("01"), "{id1}");
    assert!(serial(&id2).starts_with("02"), "{id2}");

    // The same busta at both nodes at the same instant: accepted exactly once.
    let mut ids = std::collections::BTreeSet::from([id1, id2]);
    for round in 0..10 {
        let req = Req::candidatura().xml();
        let barrier = std::sync::Barrier::new(2);
        let go = |addr: &str| {
            barrier.wait();
            post(addr, req.as_bytes())
        };
        let (a, b) = std::thread::scope(|sc| {
            let a = sc.spawn(|| go(&uno.addr));
            let b = sc.spawn(|| go(&due.addr));
            (a.join().unwrap(), b.join().unwrap())
        });
        let ok = |r: &(u16, String)| r.0 == 200 && text_of(&r.1, "Tipo_Risposta") == Some("OK");
        // The other is refused: a duplicate, or (while the first is being processed) a
        // processing error asking to retry, as one node answers a concurrent copy.
        let rifiutata = |r: &(u16, String)| {
            r.0 == 500
                && (r.1.contains("EGOV_IT_110")
                    || (r.1.contains("EGOV_IT_300") && r.1.contains("in elaborazione")))
        };
        assert!(
            (ok(&a) && rifiutata(&b)) || (ok(&b) && rifiutata(&a)),
            "round {round}: {a:?} {b:?}"
        );
        // Retried once the first is answered: a duplicate, at either node.
        let (s, body) = post(if ok(&a) { &due.addr } else { &uno.addr }, req.as_bytes());
        assert!(
            s == 500 && body.contains("EGOV_IT_110"),
            "round {round}: {body}"
        );
        for (_, body) in [&a, &b] {
            let id = text_of(body, "Identificatore").unwrap().to_string();
            assert!(ids.insert(id.clone()), "round {round}: {id} issued twice");
        }
    }

    // A third node with a number already held is refused at start.
    let terzo = node(dir.path(), &url, "ncn-3", 1);
    let (code, err) =
        PddProcess::spawn_exiting(dir.path(), &terzo).wait_exit("a node with a held number exits");
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains("node number 1 is held by a live node (ncn-1)"),
        "{err}"
    );

    // Every node reads the whole cluster's exchanges.
    let (code, lista, e) = common::pdd_cli(
        common::On::Config(&dir.path().join("ncn-2.toml")),
        &["trace", "list", "-n", "100", "--format", "json"],
    );
    assert_eq!(code, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&lista).unwrap();
    assert_eq!(v.as_array().map(|a| a.len()), Some(32), "{lista}");

    // Each node labels its metrics with its name.
    let (s, m) = http(due.addr.parse().unwrap(), "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(s, 200);
    assert!(m.contains("pdd_exchanges_total{node=\"ncn-2\","), "{m}");

    // A partner added on the shared database is in force on every node (they poll it).
    let sconosciuto = || {
        let r = Req::new(
            "MOLISEBIS",
            "MinisteroLavoro",
            "ClicLavoro",
            Some("InvioCandidatura"),
            common::invio_candidatura(&common::example("moduli/candidatura-2.0.xml")),
        );
        post(&due.addr, r.xml().as_bytes())
    };
    let (s, b) = sconosciuto();
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("EGOV_IT_1"), "an unknown Mittente: {b}");
    let pki = pdd::kit::Pki::new();
    let cert = pki.make("molise", "MOLISEBIS", false, 30, -1);
    let (code, out, e) = common::pdd_cli(
        common::On::Config(&dir.path().join("ncn-1.toml")),
        &[
            "partner",
            "add",
            "--nome",
            "MOLISEBIS",
            "--cert",
            cert.cert.to_str().unwrap(),
            "--servizi",
            "ClicLavoro",
        ],
    );
    assert_eq!(code, 0, "{out}{e}");
    common::eventually_blocking("ncn-2 knows MOLISEBIS", || {
        let (s, _) = sconosciuto();
        s == 200
    });

    // A node that stops frees its number.
    let (st, _) = uno.terminate();
    assert!(st.success());
    let di_nuovo = PddProcess::serve_config(&terzo);
    assert!(di_nuovo
        .log
        .join("\n")
        .contains("cluster node ncn-3 (number 1)"));
    let (s, b) = post(&di_nuovo.addr, Req::candidatura().xml().as_bytes());
    assert_eq!(s, 200, "{b}");
    let _ = due.terminate();
    let _ = di_nuovo.terminate();
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
fn a_database_outage_is_a_503_fault_and_service_resumes_by_itself() {
    let pg = server("cluster-outage");
    let url = pg.url_in_schema("outage").unwrap();
    let dir = TempDir::new("cluster-outage");
    let uno = PddProcess::serve_config(&node(dir.path(), &url, "ncn-1", 1));
    let addr: std::net::SocketAddr = uno.addr.parse().unwrap();
    let (s, b) = post(&uno.addr, Req::candidatura().xml().as_bytes());
    assert_eq!(s, 200, "{b}");
    let (s, b) = http(addr, "GET", "/health", &[], b"").unwrap();
    assert_eq!((s, b.as_str()), (200, "ok\nnode: ncn-1\n"));

    pg.stop().unwrap();
    // Refused with a processing Fault and 503 (try again), not a hang or a crash.
    let (s, b) = post(&uno.addr, Req::candidatura().xml().as_bytes());
    if s != 503 {
        let (_, log) = uno.terminate();
        panic!("{s} {b}\n{log}");
    }
    assert!(b.contains("EGOV_IT_300"), "{b}");
    let (s, b) = http(addr, "GET", "/health", &[], b"").unwrap();
    assert_eq!(s, 503, "{b}");
    assert!(b.contains("the database is unavailable"), "{b}");
    assert!(b.contains("node: ncn-1"), "{b}");

    // The database back: service resumes without a restart.
    pg.restart().unwrap();
    common::eventually_blocking("the node serves again", || {
        http(addr, "GET", "/health", &[], b"").is_some_and(|(s, _)| s == 200)
    });
    let (s, b) = post(&uno.addr, Req::candidatura().xml().as_bytes());
    assert_eq!(s, 200, "{b}");
    assert_eq!(text_of(&b, "Tipo_Risposta"), Some("OK"), "{b}");
    // The node took its number again: another node with it is still refused.
    common::eventually_blocking("the node holds its number again", || {
        pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            .is_ok_and(|n| n.trim() != "0")
    });
    let altro = node(dir.path(), &url, "ncn-9", 1);
    // Were the number free, this node would serve (and be killed when dropped): never a hang.
    let (code, log) = PddProcess::spawn_exiting(dir.path(), &altro)
        .wait_exit("a second node with number 1 exits");
    assert_eq!(code, Some(3), "{log}");
    assert!(log.contains("held by a live node (ncn-1)"), "{log}");
    let (st, _) = uno.terminate();
    assert!(st.success());
}

/// A valid national Candidatura (the example's) with code `codice`, inserted today.
fn candidatura(codice: &str) -> String {
    let oggi = chrono::Local::now().date_naive();
    common::example("moduli/candidatura-2.0.xml")
        .replace("SILBO26200000000000000042", codice)
        .replace(
            "<cl:datainserimento>2026-11-20<",
            &format!("<cl:datainserimento>{oggi}<"),
        )
        .replace(
            "<cl:datascadenza>2027-01-04<",
            &format!("<cl:datascadenza>{}<", oggi + chrono::Duration::days(40)),
        )
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
fn three_nodes_one_killed_mid_run_lose_nothing_and_the_survivors_drain_its_outbox() {
    let pg = server("cluster-kill");
    let url = pg.url_in_schema("kill").unwrap();
    let dir = TempDir::new("cluster-kill");
    let lazio_port = common::free_port();
    // The NCN's three nodes: they disseminate national CVs to LAZIO (down for now).
    let ncn = |n: u8| {
        let f = dir.path().join(format!("ncn-{n}.toml"));
        std::fs::write(
            &f,
            format!(
                "listen = \"127.0.0.1:0\"\ndata = \"ncn-{n}-data\"\nrole = \"ncn\"\n\n[store]\nengine = \"postgres\"\nurl = \"{url}\"\npool = 4\n\n[cluster]\nnode = \"ncn-{n}\"\nnumero = {n}\nlease_secs = 3\n\n[outbox]\nretry_min_secs = 1\nretry_max_secs = 2\n\n[[registry.soggetti]]\nnome = \"EMILIA\"\n\n[[registry.soggetti]]\nnome = \"LAZIO\"\nurl = \"http://127.0.0.1:{lazio_port}/pdd/PA\"\n"
            ),
        )
        .unwrap();
        f
    };
    let mut nodi: Vec<Option<PddProcess>> = (1..=3)
        .map(|n| Some(PddProcess::serve_config(&ncn(n))))
        .collect();
    let addrs: Vec<String> = nodi
        .iter()
        .map(|p| p.as_ref().unwrap().addr.clone())
        .collect();

    // EMILIA's CVs, spread over the nodes; node 1 is killed a third of the way through.
    let mut accettate: Vec<(String, String)> = Vec::new(); // (request xml, response id)
    let mut codici = Vec::new();
    let mut risposte_id = std::collections::BTreeSet::new();
    for i in 0..30u32 {
        if i == 10 {
            let mut p = nodi[0].take().unwrap();
            p.child.kill().unwrap();
            p.child.wait().unwrap();
        }
        let codice = format!("SILRM2026{:016}", 7_000_000 + i);
        let req = Req::invio(common::invio_candidatura(&candidatura(&codice))).xml();
        // As a balancer would: the live nodes in turn.
        let vivi: Vec<&String> = addrs
            .iter()
            .enumerate()
            .filter(|(k, _)| nodi[*k].is_some())
            .map(|(_, a)| a)
            .collect();
        let (s, b) = post(vivi[i as usize % vivi.len()], req.as_bytes());
        assert_eq!(s, 200, "{b}");
        assert_eq!(text_of(&b, "Tipo_Risposta"), Some("OK"), "{b}");
        let id = text_of(&b, "Identificatore").unwrap().to_string();
        assert!(risposte_id.insert(id.clone()), "{id} issued twice");
        accettate.push((req, id));
        codici.push(codice);
    }
    let serie: std::collections::BTreeSet<&str> =
        risposte_id.iter().map(|id| &serial(id)[..2]).collect();
    assert_eq!(serie, ["01", "02", "03"].into_iter().collect());

    // A busta node 1 accepted before it died is a duplicate at the survivors.
    let (s, b) = post(&addrs[1], accettate[0].0.as_bytes());
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("EGOV_IT_110"), "{b}");

    // LAZIO comes up: the survivors deliver every forward, node 1's queue included (its
    // lease expires), and the outbox empties.
    let lazio_toml = dir.path().join("lazio.toml");
    std::fs::write(
        &lazio_toml,
        format!(
            "listen = \"127.0.0.1:{lazio_port}\"\ndata = \"lazio-data\"\nrole = \"nr\"\n\n[soggetto]\nnome = \"LAZIO\"\n\n[porta_delegata]\ndestinatario = \"SPC/MinisteroLavoro\"\n\n[[registry.soggetti]]\nnome = \"MinisteroLavoro\"\n"
        ),
    )
    .unwrap();
    let lazio = PddProcess::serve_config(&lazio_toml);
    let lazio_addr: std::net::SocketAddr = lazio.addr.parse().unwrap();
    common::eventually_blocking("LAZIO publishes all 30 CVs", || {
        http(
            lazio_addr,
            "GET",
            "/api/candidature?per_pagina=100",
            &[],
            b"",
        )
        .and_then(|(s, b)| (s == 200).then_some(b))
        .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["totale"].as_u64() == Some(30))
    });
    let ncn2 = dir.path().join("ncn-2.toml");
    common::eventually_blocking("the outbox is empty", || {
        let (code, out, _) = common::pdd_cli(
            common::On::Config(&ncn2),
            &["outbox", "list", "--format", "json"],
        );
        code == 0
            && serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|v| v.as_array().map(|a| a.is_empty()))
                == Some(true)
    });

    // The publication API reads the database: a page read from one node continues on the
    // other (keyset paging), and together the pages are every CV, once each.
    let mut pubblicati = std::collections::BTreeSet::new();
    let mut dopo: Option<String> = None;
    for k in 0.. {
        let q = match &dopo {
            Some(c) => format!("/api/candidature?per_pagina=7&dopo={c}"),
            None => "/api/candidature?per_pagina=7".to_string(),
        };
        let a: std::net::SocketAddr = addrs[1 + k % 2].parse().unwrap();
        let (s, b) = http(a, "GET", &q, &[], b"").unwrap();
        assert_eq!(s, 200, "{b}");
        let v: serde_json::Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["totale"], 30, "{b}");
        for r in v["risultati"].as_array().unwrap() {
            let codice = r["codice"].as_str().unwrap().to_string();
            assert!(pubblicati.insert(codice), "a CV on two pages: {b}");
        }
        match v["successiva"].as_str() {
            Some(c) => dopo = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(pubblicati, codici.iter().cloned().collect());

    // Every acknowledged exchange is stored exactly once, whichever node took it.
    let (code, out, e) = common::pdd_cli(
        common::On::Config(&ncn2),
        &["trace", "list", "-n", "1000", "--format", "json"],
    );
    assert_eq!(code, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for (_, id) in &accettate {
        let n = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["response_id"] == id.as_str())
            .count();
        assert_eq!(n, 1, "{id}");
    }
    let _ = lazio.terminate();
    for p in nodi.into_iter().flatten() {
        let _ = p.terminate();
    }
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
fn a_node_history_moves_from_sled_into_the_cluster_database() {
    let pg = server("cluster-copy");
    let url = pg.url_in_schema("copia").unwrap();
    let dir = TempDir::new("cluster-copy");
    // A single node's history, on sled.
    let sled = dir.path().join("sled");
    let p = PddProcess::serve_data(&sled);
    let richieste: Vec<String> = (0..3).map(|_| Req::candidatura().xml()).collect();
    for r in &richieste {
        let (s, b) = post(&p.addr, r.as_bytes());
        assert_eq!(s, 200, "{b}");
    }
    let _ = p.terminate();

    let out = common::pdd_bin()
        .args(["store", "copy", "--from"])
        .arg(format!("sled:{}", sled.display()))
        .arg("--to")
        .arg(format!("postgres:{url}"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("copied and checked"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["exchanges", "3", "3"]),
        "{stdout}"
    );
    // Not twice: the target now holds exchanges.
    let again = common::pdd_bin()
        .args(["store", "copy", "--from"])
        .arg(format!("sled:{}", sled.display()))
        .arg("--to")
        .arg(format!("postgres:{url}"))
        .output()
        .unwrap();
    assert_ne!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds exchanges"));

    // A cluster node on the copy: the history is there, and so is the duplicate filter.
    let nodo = PddProcess::serve_config(&node(dir.path(), &url, "ncn-1", 1));
    let (s, b) = post(&nodo.addr, richieste[0].as_bytes());
    assert_eq!(s, 500, "{b}");
    assert!(b.contains("EGOV_IT_110"), "{b}");
    let (code, lista, e) = common::pdd_cli(
        common::On::Config(&dir.path().join("ncn-1.toml")),
        &["trace", "list", "--format", "json"],
    );
    assert_eq!(code, 0, "{e}");
    let v: serde_json::Value = serde_json::from_str(&lista).unwrap();
    assert_eq!(v.as_array().map(|a| a.len()), Some(4), "{lista}");
    let _ = nodo.terminate();
}

#[test]
#[cfg_attr(
    pdd_no_postgres,
    ignore = "PostgreSQL's server programs are not installed (Debian postgresql; or PDD_PG_BIN)"
)]
fn a_node_reaches_its_database_over_tls_when_asked() {
    common::require(common::peers::Peer::Postgres);
    let pki = pdd::kit::Pki::new();
    let db = pki.make("db", "db.example", true, 30, -1);
    let pg = Postgres::start(
        "cluster-tls",
        PgSettings {
            durable: false,
            tls: Some((db.cert.clone(), db.key.clone())),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("a private PostgreSQL with TLS: {e}"));
    let dir = TempDir::new("cluster-tls");
    let scrivi = |nome: &str, url: &str, ca: Option<&Path>| {
        let f = node(dir.path(), url, nome, 1);
        if let Some(ca) = ca {
            let t = std::fs::read_to_string(&f).unwrap().replace(
                "pool = 4\n",
                &format!("pool = 4\nca = \"{}\"\n", ca.display()),
            );
            std::fs::write(&f, t).unwrap();
        }
        f
    };
    // The server takes TCP over TLS only: a node that does not ask for it cannot start.
    let in_chiaro = scrivi("plain", &format!("{}?sslmode=disable", pg.url), None);
    let (code, log) =
        PddProcess::spawn_exiting(dir.path(), &in_chiaro).wait_exit("a node without TLS exits");
    assert_eq!(code, Some(3), "{log}");
    // Asking for TLS without saying which CA to trust is a configuration error.
    let senza_ca = scrivi("noca", &format!("{}?sslmode=require", pg.url), None);
    let (code, out, err) = common::pdd_cli(common::On::Config(&senza_ca), &["config", "check"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("set [store] ca"),
        "{out}{err}"
    );
    let (_, log) = PddProcess::spawn_exiting(dir.path(), &senza_ca)
        .wait_exit("a node without the database's CA exits");
    assert!(log.contains("set [store] ca"), "{log}");
    // With the CA, over TLS: it serves.
    let tls = scrivi(
        "tls",
        &format!("{}?sslmode=require", pg.url),
        Some(&pki.ca_path()),
    );
    let n = PddProcess::serve_config(&tls);
    let (s, b) = post(&n.addr, Req::candidatura().xml().as_bytes());
    assert_eq!(s, 200, "{b}");
    assert_eq!(text_of(&b, "Tipo_Risposta"), Some("OK"), "{b}");
    let _ = n.terminate();
}
