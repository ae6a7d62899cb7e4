//! `pdd store`: a backup taken under load restores every exchange acknowledged before it began;
//! restore refuses a live store and keeps the one it replaces; stats and check on a known store,
//! and check finding planted damage; retention purges old exchanges and expired
//! duplicate-filter entries and nothing else.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use common::{free_port, http, pdd_cli, On, PddProcess, Req, TempDir, CT_XML};
use pdd::modulo::Modulo;
use pdd::store::{SledStore, Store};

/// An NCN whose regional node LAZIO is down, so every accepted CV leaves forwards in the outbox:
/// its configuration `dir/nome`, and the free port it is to listen on.
fn config_ncn(dir: &Path, nome: &str, data: &str) -> (PathBuf, SocketAddr) {
    let port = free_port();
    let dead = free_port();
    let p = dir.join(nome);
    std::fs::write(
        &p,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata = \"{}\"\nrole = \"ncn\"\n\n\
             [outbox]\nretry_min_secs = 60\nretry_max_secs = 60\n\n\
             [[registry.soggetti]]\nnome = \"LAZIO\"\nurl = \"http://127.0.0.1:{dead}/pdd/PA\"\n",
            dir.join(data).display()
        ),
    )
    .unwrap();
    (p, SocketAddr::from(([127, 0, 0, 1], port)))
}

/// EMILIA's national-scope CV `n`, stamped at `t` (busta and modulo), optionally with a Scadenza.
fn richiesta(
    n: u64,
    t: DateTime<FixedOffset>,
    scadenza: Option<DateTime<FixedOffset>>,
) -> (String, String, Vec<u8>) {
    let xml = common::example("moduli/candidatura-rev038.xml");
    let root = pdd::xml::parse_document(xml.as_bytes(), pdd::xml::Limits::default()).unwrap();
    let Some(Modulo::Candidatura(mut c)) = Modulo::leggi(&root) else {
        panic!()
    };
    let codice = format!("8{:024}", n);
    c.dati_sistema.codicecandidatura = codice.as_str().into();
    c.dati_sistema.datainserimento = t.format("%Y-%m-%dT%H:%M:%S").to_string().into();
    c.dati_sistema.datascadenza = Some((t.date_naive() + chrono::Days::new(45)).to_string().into());
    // A longer career: the request and its answer no longer fit in one 8 KiB piece together,
    // so their raw messages go in pieces, which these tests purge, count and damage.
    let esperienza = c.dati_curriculari.esperienze_lavorative[0].clone();
    c.dati_curriculari
        .esperienze_lavorative
        .extend(std::iter::repeat_n(esperienza, 12));
    let mut req = Req::invio(common::invio_candidatura(&Modulo::Candidatura(c).scrivi()));
    req.id = common::id("EMILIA", t.naive_local());
    req.ora = t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string();
    req.scadenza = scadenza.map(|s| s.format("%Y-%m-%dT%H:%M:%S").to_string());
    (req.id.clone(), codice, req.xml().into_bytes())
}

fn adesso() -> DateTime<FixedOffset> {
    chrono::Local::now().fixed_offset()
}

/// What a client was told.
#[derive(Clone)]
struct Confermato {
    quando: Instant,
    id: String,
    codice: String,
    request: Vec<u8>,
    response: String,
}

#[test]
fn a_backup_under_load_restores_every_exchange_acknowledged_before_it() {
    let dir = TempDir::new("store-backup");
    let (cfg, addr) = config_ncn(&dir.0, "a.toml", "data-a");
    let proc = PddProcess::serve_config(&cfg);

    // Load: 6 clients until well after the backup.
    let confermati: Arc<Mutex<Vec<Confermato>>> = Arc::default();
    let fermo = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(1));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (fermo, confermati, counter) = (fermo.clone(), confermati.clone(), counter.clone());
        clients.push(std::thread::spawn(move || {
            while !fermo.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let (id, codice, request) = richiesta(n, adesso(), None);
                match http(addr, "POST", "/pdd/PA", &[CT_XML], &request) {
                    Some((200, response)) if response.contains("<types:Tipo_Risposta>OK<") => {
                        confermati.lock().unwrap().push(Confermato {
                            quando: Instant::now(),
                            id,
                            codice,
                            request,
                            response,
                        })
                    }
                    Some((s, r)) => panic!("under load: {s} {r}"),
                    None => panic!("the gateway went away"),
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(800));
    let inizio = Instant::now();
    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "backup", "bk"]);
    let fine = Instant::now();
    assert_eq!(rc, 0, "backup: {out}{err}");
    eprintln!("{}", out.trim());
    std::thread::sleep(Duration::from_millis(300));
    fermo.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let (status, _) = proc.terminate();
    assert!(status.success());
    let tutti = confermati.lock().unwrap().clone();
    let prima: Vec<&Confermato> = tutti.iter().filter(|c| c.quando < inizio).collect();
    let durante = tutti
        .iter()
        .filter(|c| c.quando >= inizio && c.quando <= fine)
        .count();
    let dopo = tutti.iter().filter(|c| c.quando > fine).count();
    eprintln!(
        "acknowledged: {} before the backup, {durante} while it ran, {dopo} after",
        prima.len()
    );
    assert!(prima.len() >= 10, "too little load before the backup");
    assert!(
        dopo > 0,
        "no load after the backup: the copy was not taken under load"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("bk/manifest.json")).unwrap()).unwrap();
    assert!(manifest["trees"]["exchanges"].as_u64().unwrap() >= prima.len() as u64);

    // Restored into a fresh data directory, on another port.
    let (cfg_b, addr_b) = config_ncn(&dir.0, "b.toml", "data-b");
    let (rc, out, err) = pdd_cli(On::Config(&cfg_b), &["store", "restore", "bk"]);
    assert_eq!(rc, 0, "restore: {out}{err}");
    assert!(out.contains("next minute"), "{out}");
    let proc = PddProcess::serve_config(&cfg_b);
    let mut max_seq = 0;
    for c in &prima {
        let (s, v) = http(
            addr_b,
            "GET",
            &format!("/admin/exchanges/{}", c.id),
            &[],
            b"",
        )
        .unwrap();
        assert_eq!(
            s, 200,
            "acknowledged before the backup, missing: {}: {v}",
            c.id
        );
        let ex: serde_json::Value = serde_json::from_str(&v).unwrap();
        assert_eq!(ex["outcome"], "ok", "{}", c.id);
        assert_eq!(ex["response"].as_str().unwrap(), c.response, "{}", c.id);
        max_seq = max_seq.max(ex["seq"].as_u64().unwrap());
    }
    // Their forwards are waiting in the outbox.
    let (s, v) = http(addr_b, "GET", "/admin/outbox", &[], b"").unwrap();
    assert_eq!(s, 200);
    let in_coda: HashSet<String> = serde_json::from_str::<Vec<serde_json::Value>>(&v)
        .unwrap()
        .iter()
        .map(|i| i["codice"].as_str().unwrap().to_string())
        .collect();
    for c in &prima {
        assert!(in_coda.contains(&c.codice), "forward of {} lost", c.codice);
    }
    // Replays are refused as duplicates, not processed again.
    for c in &prima {
        let (s, v) = http(addr_b, "POST", "/pdd/PA", &[CT_XML], &c.request).unwrap();
        assert!(
            s == 500 && v.contains("EGOV_IT_110") && !v.contains("Tipo_Risposta"),
            "replay of {} after restore: {s} {v}",
            c.id
        );
    }
    // New exchanges neither reuse a sequence number nor an Identificatore of the old store.
    let (id, _, request) = richiesta(999_999, adesso(), None);
    let (s, v) = http(addr_b, "POST", "/pdd/PA", &[CT_XML], &request).unwrap();
    assert!(s == 200 && v.contains(">OK<"), "{s} {v}");
    let risposta = common::text_of(&v, "Identificatore").unwrap().to_string();
    for c in &tutti {
        assert_ne!(
            common::text_of(&c.response, "Identificatore").unwrap(),
            risposta,
            "Identificatore issued again after restore"
        );
    }
    let (_, v) = http(addr_b, "GET", &format!("/admin/exchanges/{id}"), &[], b"").unwrap();
    let nuovo: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert!(nuovo["seq"].as_u64().unwrap() > max_seq);
    // The whole check, through the running gateway.
    let (rc, out, err) = pdd_cli(On::Config(&cfg_b), &["store", "check"]);
    assert_eq!(rc, 0, "{out}{err}");
    let (status, _) = proc.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn restore_refuses_a_live_store_and_force_keeps_the_old_one_aside() {
    let dir = TempDir::new("store-restore");
    let (cfg, addr) = config_ncn(&dir.0, "a.toml", "data");
    let data = dir.0.join("data");
    let proc = PddProcess::serve_config(&cfg);
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, _, req) = richiesta(100 + n, adesso(), None);
        let (s, v) = http(addr, "POST", "/pdd/PA", &[CT_XML], &req).unwrap();
        assert_eq!(s, 200, "{v}");
        ids.push(id);
    }
    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "backup", "bk"]);
    assert_eq!(rc, 0, "{out}{err}");
    // A backup goes into a new directory only.
    let (rc, _, err) = pdd_cli(On::Config(&cfg), &["store", "backup", "bk"]);
    assert_eq!(rc, 2, "{err}");
    // After the backup: in the live store, not in the backup.
    let (dopo, _, req) = richiesta(200, adesso(), None);
    assert_eq!(
        http(addr, "POST", "/pdd/PA", &[CT_XML], &req).unwrap().0,
        200
    );

    let aside = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().contains("data.replaced-"))
            .collect()
    };
    // The gateway answers for the store: refused, even with --force, and nothing changes.
    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "restore", "bk", "--force"]);
    assert_eq!(rc, 2, "{out}{err}");
    assert!(err.contains("stop it first"), "{err}");
    assert!(aside(&dir.0).is_empty());
    let (status, _) = proc.terminate();
    assert!(status.success());

    // Held by a process that does not answer HTTP (the sled lock): refused too.
    {
        let _held = SledStore::open_waiting(&data, Duration::from_secs(5)).unwrap();
        let (rc, _, err) = pdd_cli(On::Config(&cfg), &["store", "restore", "bk", "--force"]);
        assert_eq!(rc, 2, "{err}");
        assert!(err.contains("held by a running pdd"), "{err}");
    }
    // Exists: only with --force.
    let (rc, _, err) = pdd_cli(On::Config(&cfg), &["store", "restore", "bk"]);
    assert_eq!(rc, 2, "{err}");
    assert!(err.contains("--force"), "{err}");
    // Not a backup: refused.
    let (rc, _, err) = pdd_cli(
        On::Config(&cfg),
        &["store", "restore", "nessuno", "--force"],
    );
    assert_eq!(rc, 2, "{err}");

    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "restore", "bk", "--force"]);
    assert_eq!(rc, 0, "{out}{err}");
    // The old store at hand: its counters carried over, no wait for the next minute.
    assert!(out.contains("carried over"), "{out}");
    assert!(!out.contains("waiting"), "{out}");
    let vecchi = aside(&dir.0);
    assert_eq!(vecchi.len(), 1, "{vecchi:?}");
    // The old store, whole, aside; the restored one without what came after the backup.
    let vecchio = SledStore::open_waiting(&vecchi[0], Duration::from_secs(5)).unwrap();
    assert!(vecchio.exchange_by_id(&dopo).await.unwrap().is_some());
    assert!(vecchio.check().await.unwrap().ok());
    drop(vecchio);
    let nuovo = SledStore::open_waiting(&data, Duration::from_secs(5)).unwrap();
    assert!(nuovo.exchange_by_id(&dopo).await.unwrap().is_none());
    for id in &ids {
        assert!(nuovo.exchange_by_id(id).await.unwrap().is_some(), "{id}");
    }
    assert!(nuovo.check().await.unwrap().ok());
    // The backup is left as it was.
    assert!(dir.0.join("bk/manifest.json").exists());
    assert!(!data.join("manifest.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_check_on_a_known_store_and_check_finds_damage() {
    // A plain gateway: it stores what it receives and forwards nothing.
    let gw = common::start(pdd::config::Config::default()).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (id, _, req) = richiesta(300 + n, adesso(), None);
        let r = common::post(&gw.url("/pdd/PA"), req, &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        ids.push(id);
    }
    let dir = gw.stop().await;
    let data = dir.0.join("data");
    // Until this process lets go of the store (sled's flusher thread ends a moment later).
    drop(SledStore::open_waiting(&data, Duration::from_secs(5)).unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let cfg = dir.0.join("pdd.toml");
    std::fs::write(&cfg, format!("data = \"{}\"\n", data.display())).unwrap();

    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "stats", "--json"]);
    assert_eq!(rc, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let voci = |nome: &str| {
        v["trees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == nome)
            .map(|t| t["entries"].as_u64().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(voci("exchanges"), 3);
    assert_eq!(voci("dup"), 3);
    assert_eq!(voci("ids"), 6);
    assert_eq!(voci("moduli"), 3);
    assert_eq!(voci("outbox"), 0);
    // The records and moduli are in the log's segments, not in sled's trees.
    assert_eq!(voci("raw"), 0);
    assert!(v["log_segments"].as_u64().unwrap() >= 1);
    assert!(v["log_bytes"].as_u64().unwrap() > 0);
    assert!(v["bytes_in_directory"].as_u64().unwrap() > v["log_bytes"].as_u64().unwrap());
    let (rc, out, _) = pdd_cli(On::Config(&cfg), &["store", "stats"]);
    assert_eq!(rc, 0);
    assert!(
        out.contains("exchanges") && out.contains("on disk") && out.contains("log: "),
        "{out}"
    );
    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "check"]);
    assert_eq!(rc, 0, "{out}{err}");
    assert!(
        out.contains("exchanges 3") && out.trim_end().ends_with("ok"),
        "{out}"
    );

    // Damage: a byte changed in an exchange's record in the log, an ids entry pointing
    // nowhere, an unreadable outbox entry.
    let danneggiato = {
        let s = SledStore::open_waiting(&data, Duration::from_secs(5)).unwrap();
        let seq = s.exchange_by_id(&ids[1]).await.unwrap().unwrap().seq;
        drop(s);
        std::thread::sleep(Duration::from_millis(200));
        let db = common::sled_grezzo(&data);
        // sled keeps where the record lies: a marker, then segment, offset and length as
        // LEB128 (docs/reliability.md).
        let v = db
            .open_tree("exchanges")
            .unwrap()
            .get(seq.to_be_bytes())
            .unwrap()
            .unwrap();
        assert_eq!(&v[..4], b"\xffRG2");
        let mut campi = Vec::new();
        let mut at = 4;
        for _ in 0..3 {
            let (mut n, mut shift) = (0u64, 0);
            loop {
                let b = v[at];
                at += 1;
                n |= u64::from(b & 0x7f) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            campi.push(n);
        }
        let (seg, off, len) = (campi[0], campi[1], campi[2]);
        let segmento = data.join("registro").join(format!("{seg:08}.log"));
        let mut byte = std::fs::read(&segmento).unwrap();
        byte[(off + len / 2) as usize] ^= 0x20;
        std::fs::write(&segmento, byte).unwrap();
        // Keyed as the store keys an id not of the standard's form (`~`, then the id).
        db.open_tree("ids")
            .unwrap()
            .insert("~FANTASMA", &123_456u64.to_be_bytes())
            .unwrap();
        db.open_tree("outbox")
            .unwrap()
            .insert(1_000_000_000u64.to_be_bytes(), &b"{not json"[..])
            .unwrap();
        db.flush().unwrap();
        seq
    };
    std::thread::sleep(Duration::from_millis(200));
    let (rc, out, err) = pdd_cli(On::Config(&cfg), &["store", "check"]);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(
        out.contains(&format!(
            "exchange {danneggiato}: store: corrupt record: the log's segment"
        )) && out.contains("do not match their CRC"),
        "{out}"
    );
    assert!(
        out.contains("FANTASMA points to exchange 123456, which is missing"),
        "{out}"
    );
    assert!(out.contains("outbox entry"), "{out}");
    let (rc, out, _) = pdd_cli(On::Config(&cfg), &["store", "check", "--json"]);
    assert_eq!(rc, 1);
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["problems_total"], 3, "{out}");
    // No store at all: exit 2.
    std::fs::write(
        &cfg,
        format!("data = \"{}\"\n", dir.0.join("nessuno").display()),
    )
    .unwrap();
    let (rc, _, err) = pdd_cli(On::Config(&cfg), &["store", "check"]);
    assert_eq!(rc, 2, "{err}");
    assert!(!dir.0.join("nessuno").exists(), "check created a store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_purges_old_exchanges_and_expired_duplicates_and_keeps_the_rest() {
    let mut config = pdd::config::Config {
        role: pdd::rete::Ruolo::Ncn,
        ..Default::default()
    };
    let mut lazio = pdd::registry::Soggetto::new("SPC", "LAZIO");
    lazio.url = Some(format!("http://127.0.0.1:{}/pdd/PA", free_port()));
    config.registry.soggetti.push(lazio);
    config.outbox.retry_min_secs = 3600;
    config.outbox.retry_max_secs = 3600;
    assert_eq!(
        (
            config.store.retention_days,
            config.store.duplicate_window_days
        ),
        (30, 5),
        "the documented defaults"
    );
    let clock = Arc::new(pdd::clock::OffsetClock::default());
    let gw = common::start_with_clock(config, clock.clone()).await;
    let giorni = |d: i64| chrono::Duration::days(d);
    let invia = |req: Vec<u8>| {
        let url = gw.url("/pdd/PA");
        async move { common::post(&url, req, &[]).await }
    };

    // A today; B and C 31 days later, C with a Scadenza two months after that.
    let oggi = adesso();
    let (a, cod_a, req_a) = richiesta(400, oggi, None);
    assert_eq!(invia(req_a.clone()).await.status, 200);
    clock.set_offset_secs(giorni(31).num_seconds());
    let dopo = oggi + giorni(31);
    let (b, cod_b, req_b) = richiesta(401, dopo, None);
    let (c, cod_c, req_c) = richiesta(402, dopo, Some(dopo + giorni(60)));
    assert_eq!(invia(req_b.clone()).await.status, 200);
    assert_eq!(invia(req_c.clone()).await.status, 200);
    let moduli = gw
        .gw
        .store
        .moduli(pdd::modulo::Tipo::Candidatura)
        .await
        .unwrap()
        .len();
    let outbox = gw.gw.outbox.elenco().await.unwrap().len();
    assert!(outbox >= 3);

    // A, and the first attempts of its forwards (outgoing exchanges), are 31 days old.
    let r = gw.gw.care.purga().await.unwrap();
    assert!(r.exchanges >= 1 && r.ids >= 2, "{r:?}");
    assert_eq!(r.dup, 1, "{r:?}");
    let store = &gw.gw.store;
    assert!(
        store.exchange_by_id(&a).await.unwrap().is_none(),
        "A is 31 days old"
    );
    let limite = (dopo - giorni(30)).to_rfc3339();
    for e in store.recent(10_000).await.unwrap() {
        let t = e.received_at;
        assert!(
            t > dopo - giorni(30),
            "exchange {} of {t} kept (limit {limite})",
            e.seq
        );
    }
    assert!(store.exchange_by_id(&b).await.unwrap().is_some());
    assert!(store.exchange_by_id(&c).await.unwrap().is_some());
    // Moduli and forwards stay, A's included.
    assert_eq!(
        store
            .moduli(pdd::modulo::Tipo::Candidatura)
            .await
            .unwrap()
            .len(),
        moduli
    );
    assert!(store
        .modulo(pdd::modulo::Tipo::Candidatura, &cod_a)
        .await
        .unwrap()
        .is_some());
    assert_eq!(gw.gw.outbox.elenco().await.unwrap().len(), outbox);
    assert!(gw
        .gw
        .outbox
        .elenco()
        .await
        .unwrap()
        .iter()
        .any(|i| i.codice == cod_a));
    // A replay of A is not processed: its busta is expired.
    let replay = invia(req_a).await;
    assert!(replay.body.contains("EGOV_IT_301"), "{}", replay.body);

    // Six days later: B's entry goes (first seen 6 days ago, busta expired), C's stays (its
    // Scadenza is ahead), and so do both exchanges (6 days old). Through the admin endpoint.
    clock.set_offset_secs(giorni(37).num_seconds());
    let (s, v) = http(gw.addr, "POST", "/admin/store/purge", &[], b"").unwrap();
    assert_eq!(s, 200, "{v}");
    let r: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert_eq!(
        (r["exchanges"].as_u64(), r["dup"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let replay = invia(req_c).await;
    assert!(
        replay.status == 500 && replay.body.contains("EGOV_IT_110"),
        "C is still a duplicate: {}",
        replay.body
    );
    let replay = invia(req_b).await;
    assert!(replay.body.contains("EGOV_IT_301"), "{}", replay.body);
    assert!(store.exchange_by_id(&b).await.unwrap().is_some());
    for cod in [&cod_a, &cod_b, &cod_c] {
        assert!(
            store
                .modulo(pdd::modulo::Tipo::Candidatura, cod)
                .await
                .unwrap()
                .is_some(),
            "{cod}"
        );
    }
    assert_eq!(gw.gw.outbox.elenco().await.unwrap().len(), outbox);
    let report = store.check().await.unwrap();
    assert!(report.ok(), "{report:?}");
    gw.stop().await;
}
