//! Crash consistency: `pdd serve` (an NCN whose regional node is down, so every accepted CV
//! leaves a forward in the outbox) takes concurrent exchanges — signed and unsigned — and is
//! killed with SIGKILL at a random moment, then restarted on the same data, many times. After
//! each restart, for every exchange that got a positive answer: it is in the store with the
//! very answer the client got; its Identificatore is still refused by the duplicate filter;
//! its forward is still in the outbox; no Identificatore was ever issued twice; the store
//! opened cleanly. `PDD_CRASH_ROUNDS` (default 6) and `PDD_CRASH_SEED` set the run.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, http, KeyPair, PddProcess, Pki, Req, TempDir, CT_XML};
use pdd::modulo::Modulo;

/// A tiny deterministic generator (xorshift), so a failing run can be repeated by its seed.
struct Caso(u64);
impl Caso {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fino(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What a client was told: the request it sent, the answer it got, the CV's code.
#[derive(Clone)]
struct Confermato {
    request: Vec<u8>,
    response: String,
    codice: String,
}

/// A national-scope CV with its own code and today's dates, in EMILIA's request to the NCN.
fn richiesta(n: u64, emilia: &KeyPair, firmata: bool) -> (String, Vec<u8>) {
    let xml = common::example("moduli/candidatura-rev038.xml");
    let root = pdd::xml::parse_document(xml.as_bytes(), pdd::xml::Limits::default()).unwrap();
    let Some(Modulo::Candidatura(mut c)) = Modulo::leggi(&root) else {
        panic!()
    };
    let oggi = chrono::Local::now();
    let codice = format!("9{:024}", n);
    c.dati_sistema.codicecandidatura = codice.as_str().into();
    c.dati_sistema.datainserimento = oggi.format("%Y-%m-%dT%H:%M:%S").to_string().into();
    c.dati_sistema.datascadenza = Some(
        (oggi.date_naive() + chrono::Days::new(40))
            .to_string()
            .into(),
    );
    let msg = Req::invio(common::invio_candidatura(&Modulo::Candidatura(c).scrivi())).xml();
    let msg = if firmata { emilia.sign(&msg) } else { msg };
    (codice, msg.into_bytes())
}

#[test]
fn acknowledged_exchanges_survive_sigkill() {
    let rounds: usize = std::env::var("PDD_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("PDD_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash harness: {rounds} rounds, PDD_CRASH_SEED={seed}");
    let mut caso = Caso(seed);
    let dir = TempDir::new("crash");
    let pki = Pki::new();
    let emilia = pki.make("emilia", "EMILIA", false, 30, -1);
    let port = free_port();
    let dead = free_port();
    let config = dir.0.join("ncn.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\ndata = \"{}\"\nrole = \"ncn\"\n\n\
             [outbox]\nretry_min_secs = 60\nretry_max_secs = 60\n\n\
             [[registry.soggetti]]\nnome = \"EMILIA\"\ncert = \"{}\"\nfirma = \"optional\"\n\n\
             [[registry.soggetti]]\nnome = \"LAZIO\"\nurl = \"http://127.0.0.1:{dead}/pdd/PA\"\n",
            dir.0.join("data").display(),
            emilia.cert.display()
        ),
    )
    .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = || PddProcess::serve_config(&config);

    let confermati: Arc<Mutex<Vec<Confermato>>> = Arc::default();
    let mut risposte_id: HashSet<String> = HashSet::new();
    let mut inviati = 0usize;
    let mut verificati = 0usize;
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(1));
    let mut proc = start();
    for round in 0..rounds {
        // Load: 6 clients, half of the requests signed, until the kill.
        let fermo = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        let prima = confermati.lock().unwrap().len();
        let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for k in 0..6u64 {
            let (fermo, confermati, counter, emilia, sent) = (
                fermo.clone(),
                confermati.clone(),
                counter.clone(),
                emilia.clone(),
                sent.clone(),
            );
            clients.push(std::thread::spawn(move || {
                while !fermo.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let (codice, request) = richiesta(n, &emilia, (n + k) % 2 == 0);
                    sent.fetch_add(1, Ordering::Relaxed);
                    match http(addr, "POST", "/pdd/PA", &[CT_XML], &request) {
                        Some((200, response)) if response.contains("<types:Tipo_Risposta>OK<") => {
                            confermati.lock().unwrap().push(Confermato {
                                request,
                                response,
                                codice,
                            });
                        }
                        Some((200, response)) => panic!("a KO under load: {response}"),
                        // Killed mid-exchange: no answer, no promise.
                        _ => {}
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(150 + caso.fino(900)));
        proc.child.kill().unwrap(); // SIGKILL
        proc.child.wait().unwrap();
        fermo.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        inviati += sent.load(Ordering::Relaxed);
        drop(proc);

        // Restart on the same data: it must open and listen.
        let t = Instant::now();
        proc = start();
        let riavvio = t.elapsed();

        let tutti = confermati.lock().unwrap().clone();
        // This round's answers, and a sample of the earlier ones.
        let mut da_verificare: Vec<&Confermato> = tutti[prima..].iter().collect();
        for _ in 0..prima.min(30) {
            da_verificare.push(&tutti[caso.fino(prima as u64) as usize]);
        }
        for c in &da_verificare {
            let req = String::from_utf8_lossy(&c.request);
            let id = common::text_of(&req, "Identificatore").unwrap().to_string();
            let (s, v) =
                http(addr, "GET", &format!("/admin/exchanges/{id}"), &[], b"").expect("admin");
            assert_eq!(
                s, 200,
                "round {round}: acknowledged exchange {id} lost: {v}"
            );
            let ex: serde_json::Value = serde_json::from_str(&v).unwrap();
            assert_eq!(ex["outcome"], "ok", "round {round}: {id}");
            assert_eq!(
                ex["response"].as_str().unwrap(),
                c.response,
                "round {round}: the stored answer of {id} is not the one given"
            );
            verificati += 1;
        }
        // No Identificatore issued twice (the NCN's answers).
        for c in &tutti[prima..] {
            let r = common::text_of(&c.response, "Identificatore")
                .unwrap()
                .to_string();
            assert!(
                risposte_id.insert(r.clone()),
                "round {round}: Identificatore {r} issued twice"
            );
        }
        // The duplicate filter still knows answered ids: a replay is refused, not processed.
        for _ in 0..3.min(tutti.len()) {
            let c = &tutti[caso.fino(tutti.len() as u64) as usize];
            let (s, v) = http(addr, "POST", "/pdd/PA", &[CT_XML], &c.request).expect("replay");
            assert!(
                s != 200 || !v.contains("Tipo_Risposta"),
                "round {round}: a replay was processed: {v}"
            );
            assert!(
                v.contains("EGOV_IT_110") || v.contains("EGOV_IT_2"),
                "round {round}: {s} {v}"
            );
        }
        // Every acknowledged CV's forward is still waiting in the outbox (LAZIO is down).
        let (s, v) = http(addr, "GET", "/admin/outbox", &[], b"").expect("outbox");
        assert_eq!(s, 200);
        let outbox: Vec<serde_json::Value> = serde_json::from_str(&v).unwrap();
        let in_coda: HashMap<String, usize> = outbox.iter().fold(HashMap::new(), |mut m, i| {
            *m.entry(i["codice"].as_str().unwrap().to_string())
                .or_default() += 1;
            m
        });
        // Nor any forward's Identificatore.
        let mut inoltri_id = HashSet::new();
        for i in &outbox {
            let id = i["id"].as_str().unwrap();
            assert!(
                inoltri_id.insert(id),
                "round {round}: forward Identificatore {id} issued twice"
            );
            assert!(
                !risposte_id.contains(id),
                "round {round}: {id} both an answer's and a forward's"
            );
        }
        for c in &tutti {
            assert!(
                in_coda.contains_key(&c.codice),
                "round {round}: the forward of {} is lost",
                c.codice
            );
        }
        eprintln!(
            "round {round}: {} acknowledged before the kill, restart in {riavvio:?}, outbox {} entries, all checks passed",
            tutti.len() - prima,
            outbox.len()
        );
    }
    let (status, _) = proc.terminate();
    assert!(status.success());
    let tot = confermati.lock().unwrap().len();
    eprintln!(
        "crash harness: {rounds} SIGKILL rounds, {inviati} requests sent, {tot} acknowledged, {verificati} checks of stored answers, 0 lost"
    );
    assert!(
        tot > 0,
        "no exchange was acknowledged: the harness tested nothing"
    );
}
