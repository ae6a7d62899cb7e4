//! `pdd bench`: the load generator. It makes a throw-away PKI, starts `pdd serve` as a regional
//! node (LAZIO) whose partner is the Ministry, prepares N distinct InvioCandidatura requests
//! beforehand (signed by the partner's key when the scenario signs, so the client spends no RSA
//! during the run), drives the real server over keep-alive HTTPS with client certificates at a
//! given concurrency for a given time, and prints throughput, latency, errors, the server's
//! memory and the store's bytes per exchange, next to the machine's RSA-2048 signing ceiling.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{Datelike, NaiveDate};
use clap::{Args, ValueEnum};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::kit;
use crate::wssec::dsig;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// The partner signs its requests (WS-Security); the gateway verifies them and signs its
    /// answers.
    Signed,
    /// Mutual TLS only: no signature either way. The run also measures the echo server on the
    /// same requests (`ratio_to_echo`).
    Unsigned,
    /// The transport alone: the same client against a server of the same TLS set-up that reads
    /// each body and answers a fixed 1 KB SOAP message.
    Echo,
}

/// What a successful answer contains, by server.
const OK_GATEWAY: &[u8] = b"<types:Tipo_Risposta>OK</types:Tipo_Risposta>";
const OK_ECO: &[u8] = b"<e:Eco xmlns:e=\"urn:pdd:bench\">";

/// The echo server of `--scenario echo` (`pdd bench-eco`, hidden): the configuration's
/// listeners and TLS, nothing else.
pub fn eco(config: crate::config::Config) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let registry = config.build_registry().map_err(|e| e.to_string())?;
        let gw = crate::server::gateway(
            config.clone(),
            registry,
            Arc::new(crate::store::MemoryStore::new()),
            Arc::new(crate::clock::SystemClock),
            None,
        )
        .map_err(|e| e.to_string())?;
        let tls = gw.server_tls().map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("{}: {e}", config.listen))?;
        let locale = match config.local_listen.filter(|_| tls.is_some()) {
            Some(a) => Some(
                tokio::net::TcpListener::bind(a)
                    .await
                    .map_err(|e| format!("{a}: {e}"))?,
            ),
            None => None,
        };
        crate::server::eco::serve(tls, listener, locale)
            .await
            .map_err(|e| e.to_string())
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Whether buste are signed both ways.
    #[arg(long, value_enum, default_value_t = Scenario::Signed)]
    pub scenario: Scenario,
    /// Size of the Candidatura in each request, in KB (padded with work experiences; the
    /// smallest valid one is about 1 KB).
    #[arg(long, default_value_t = 1)]
    pub payload_kb: usize,
    /// Connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Time measured, in seconds: `10`, `10s`, `2m`.
    #[arg(long, default_value_t = 10.0, value_parser = super::durata_secondi)]
    pub duration: f64,
    /// Load before the measure starts (connections, caches), not counted: `1`, `1s`, `500ms`.
    #[arg(long, default_value_t = 1.0, value_parser = super::durata_secondi)]
    pub warmup: f64,
    /// Requests prepared beforehand (each has its own Identificatore). Default: enough for
    /// the run at a generous rate; the run stops early, and says so, if they run out.
    #[arg(long)]
    pub requests: Option<usize>,
    /// Keep the gateway's store and keys in DIR, and reuse them when DIR exists: a second run
    /// measures on the store the first one filled. Default: a temporary directory, removed.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Output: the text report (the default), or one JSON object.
    #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = super::formato_json, action = clap::ArgAction::Set)]
    pub json: bool,
    /// Run the server under this command, e.g. "perf record -g -o /tmp/perf.data" or
    /// "valgrind --tool=massif" (split at spaces; the server command line follows it).
    #[arg(long, value_name = "COMMAND")]
    pub server_wrapper: Option<String>,
    /// The store's engine: sled (embedded, the default) or postgres (a private, durable
    /// PostgreSQL server the bench starts and stops; needs its server programs installed).
    #[arg(long, value_enum, default_value_t = BenchStore::Sled)]
    pub store: BenchStore,
    /// A new sled store with compression (`[store] compression = true`), to compare.
    #[arg(long)]
    pub compressed: bool,
    /// sled's page cache of the server (`[store] cache_mb`; default: the configuration's, 4).
    #[arg(long, value_name = "MIB")]
    pub cache_mb: Option<u64>,
    /// Gateways sharing the store (postgres only): the connections are spread over them.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchStore {
    Sled,
    Postgres,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub struct Risultato {
    pub scenario: &'static str,
    pub store: &'static str,
    pub nodes: usize,
    pub payload_kb: usize,
    pub payload_bytes: usize,
    pub request_bytes: usize,
    pub concurrency: usize,
    pub duration_s: f64,
    pub exchanges: u64,
    pub exchanges_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub idle_rss_mb: f64,
    pub peak_rss_mb: f64,
    pub store_bytes_per_exchange: Option<f64>,
    pub stored_before: u64,
    pub server_cores: usize,
    pub rsa_sign_per_core_per_s: f64,
    pub rsa_sign_ceiling_per_s: f64,
    pub ratio_to_ceiling: Option<f64>,
    pub ran_out_of_requests: bool,
    /// The server processes' user + system CPU time over the measured window, per exchange.
    pub server_cpu_us_per_exchange: Option<f64>,
    /// This load generator's, the same way.
    pub client_cpu_us_per_exchange: Option<f64>,
    /// One RSA-2048 signature on one core (1e6 / rsa_sign_per_core_per_s).
    pub rsa_sign_us: f64,
    /// Signed runs: rsa_sign_us ÷ server_cpu_us_per_exchange, the share of the server's work
    /// that is the one signature an answer needs.
    pub efficiency: Option<f64>,
    /// Unsigned runs: the echo server on the same requests, in the same run.
    pub echo_exchanges_per_s: Option<f64>,
    pub echo_server_cpu_us_per_request: Option<f64>,
    /// exchanges_per_s ÷ echo_exchanges_per_s.
    pub ratio_to_echo: Option<f64>,
}

pub fn bench(a: BenchArgs) -> Result<ExitCode, String> {
    if a.concurrency == 0 || a.duration <= 0.0 || a.payload_kb == 0 || a.nodes == 0 {
        return Err("--concurrency, --duration, --payload-kb and --nodes must be positive".into());
    }
    if a.nodes > 1 && a.store != BenchStore::Postgres {
        return Err("--nodes above 1 needs --store postgres (nodes share one database)".into());
    }
    if a.nodes > 99 {
        return Err("--nodes: at most 99 (node numbers are two digits)".into());
    }
    let r = esegui(&a)?;
    if a.json {
        println!("{}", serde_json::to_string(&r).map_err(|e| e.to_string())?);
    } else {
        stampa(&r);
    }
    Ok(if r.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn passo(json: bool, s: &str) {
    if !json {
        eprintln!("bench: {s}");
    }
}

fn esegui(a: &BenchArgs) -> Result<Risultato, String> {
    let temp;
    let dir = match &a.data {
        Some(d) => d.clone(),
        None => {
            temp = kit::TempDir::create("bench").map_err(|e| e.to_string())?;
            temp.0.clone()
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pki = Pki::in_dir(&dir.join("pki"))?;

    // The ceiling first, while nothing else runs.
    passo(
        a.json,
        "measuring RSA-2048 signatures per second on one core",
    );
    let per_core = rsa_per_core(&pki.client_key)?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let signed = a.scenario == Scenario::Signed;
    let eco_solo = a.scenario == Scenario::Echo;
    let comando = if eco_solo { "bench-eco" } else { "serve" };
    let n = a.requests.unwrap_or_else(|| {
        // Generous: a little more than the rates seen on a 2-core machine, per second run.
        let rate = if signed { 4_000.0 } else { 20_000.0 } / (1.0 + a.payload_kb as f64 / 16.0);
        // At most about 1 GiB of prepared requests in this process.
        let busta = if signed { 6 * 1024 } else { 2 * 1024 };
        let tetto = (1usize << 30) / (a.payload_kb * 1024 * 11 / 10 + busta);
        (((a.duration + a.warmup) * rate) as usize)
            .clamp(200, 2_000_000)
            .min(tetto)
    });
    // The busta's Timestamp must outlive preparation and run.
    let ttl_secs = 300i64.max((a.duration + a.warmup) as i64 * 4 + 600);
    passo(
        a.json,
        &format!(
            "preparing {n} {} requests with a {} KB Candidatura",
            if signed { "signed" } else { "unsigned" },
            a.payload_kb
        ),
    );
    // Numbers go on from a kept store's earlier runs: Identificatori and codes stay new.
    let primo = conta_scambi(&dir) as usize;
    let (richieste, payload_bytes) =
        prepara(primo, n, a.payload_kb * 1024, signed, &pki, ttl_secs)?;
    let request_bytes = richieste.iter().map(|r| r.len()).sum::<usize>() / richieste.len();

    // With PostgreSQL: a private durable server for this run, in the run's directory.
    let pg = match a.store {
        BenchStore::Sled => None,
        BenchStore::Postgres => {
            passo(a.json, "starting a private PostgreSQL server");
            let pg = kit::postgres::Postgres::start(
                "bench",
                kit::postgres::PgSettings {
                    durable: true,
                    max_connections: 100 + 40 * a.nodes as u32,
                    tls: None,
                },
            )
            .map_err(|e| e.to_string())?;
            Some(pg)
        }
    };
    let indirizzi = kit::free_loopbacks(2 * a.nodes).map_err(|e| e.to_string())?;
    let store_dir = dir.join("store");
    let stored_before = conta_scambi(&dir);
    let misura = |pg: &Option<kit::postgres::Postgres>| match pg {
        Some(pg) => dimensione(pg.data_dir()),
        None => dimensione(&store_dir),
    };
    let bytes_before = misura(&pg);
    let mut servers = Vec::with_capacity(a.nodes);
    let mut listens = Vec::with_capacity(a.nodes);
    for i in 0..a.nodes {
        let (listen, local) = (indirizzi[2 * i], indirizzi[2 * i + 1]);
        let conf = dir.join(format!("pdd-{i}.toml"));
        let mut testo = configurazione(
            listen,
            local,
            &store_dir,
            &pki,
            signed,
            a.concurrency,
            ttl_secs,
        );
        if pg.is_none() && (a.compressed || a.cache_mb.is_some()) {
            testo.push_str("\n[store]\n");
            if a.compressed {
                testo.push_str("compression = true\n");
            }
            if let Some(mb) = a.cache_mb {
                testo.push_str(&format!("cache_mb = {mb}\n"));
            }
        }
        if let Some(pg) = &pg {
            testo.push_str(&format!(
                "\n[store]\nengine = \"postgres\"\nurl = \"{}\"\npool = {}\n\n[cluster]\nnode = \"bench-{}\"\nnumero = {}\n",
                pg.url,
                16,
                i + 1,
                i + 1
            ));
        }
        std::fs::write(&conf, testo).map_err(|e| format!("{}: {e}", conf.display()))?;
        passo(a.json, &format!("starting pdd serve on {listen}"));
        servers.push(Server::start(
            &conf,
            &dir.join(format!("server-{i}.log")),
            local,
            a.server_wrapper.as_deref(),
            comando,
        )?);
        listens.push(listen);
    }
    // The largest of the nodes, in MB.
    let rss_mb = |campo: &str| {
        servers
            .iter()
            .map(|s| s.rss_kb(campo).unwrap_or(0))
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    };
    let idle_rss = rss_mb("VmRSS");

    passo(
        a.json,
        &format!(
            "{} connections over {} node(s) for {}+{} s (warm-up + measure)",
            a.concurrency, a.nodes, a.warmup, a.duration
        ),
    );
    let pids: Vec<u32> = servers.iter().map(|s| s.child.id()).collect();
    // An unsigned run measures the echo server afterwards, with the same requests.
    let per_eco = (a.scenario == Scenario::Unsigned && a.nodes == 1).then(|| richieste.clone());
    let ok = if eco_solo { OK_ECO } else { OK_GATEWAY };
    let carico = carica(&pki, &listens, richieste, a, &pids, ok)?;
    let peak_rss = rss_mb("VmHWM");
    for s in servers {
        s.stop()?;
    }
    let eco = match per_eco {
        Some(richieste) => {
            passo(
                a.json,
                "the same requests against the echo server (the transport alone)",
            );
            let conf = dir.join("pdd-0.toml");
            let s = Server::start(&conf, &dir.join("eco.log"), indirizzi[1], None, "bench-eco")?;
            let pid = [s.child.id()];
            let c = carica(&pki, &listens[..1], richieste, a, &pid, OK_ECO)?;
            s.stop()?;
            Some(c)
        }
        None => None,
    };
    let stored = carico.risposte;
    let bytes_after = misura(&pg);
    if let (Some(pg), true) = (&pg, std::env::var_os("PDD_BENCH_PG_STATS").is_some()) {
        // Where the database's time went (needs pg_stat_statements loaded: PDD_PG_OPTIONS).
        let _ = pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        match pg.psql("SELECT calls, round(total_exec_time::numeric, 1), round((total_exec_time / calls)::numeric * 1000, 1), left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20") {
            Ok(t) => eprintln!("bench: statements (calls | total ms | us per call | query):\n{t}"),
            Err(e) => eprintln!("bench: no statement statistics: {e}"),
        }
    }
    drop(pg);
    if let Some(_keep) = &a.data {
        // Every request taken may be stored, answered or not: the next run starts after them.
        std::fs::write(dir.join("exchanges"), (primo + carico.presi).to_string())
            .map_err(|e| e.to_string())?;
    }
    let ceiling = per_core * cores as f64;
    let mut lat = carico.latenze;
    lat.sort_unstable();
    let q = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let rate = carico.misurati as f64 / carico.finestra;
    let per_scambio = |cpu: Option<f64>| {
        cpu.filter(|_| carico.misurati > 0)
            .map(|s| s * 1e6 / carico.misurati as f64)
    };
    let server_cpu = per_scambio(carico.cpu_server);
    let rsa_sign_us = 1e6 / per_core;
    let eco_rate = eco.as_ref().map(|c| c.misurati as f64 / c.finestra);
    let eco_cpu = eco.as_ref().and_then(|c| {
        c.cpu_server
            .filter(|_| c.misurati > 0)
            .map(|s| s * 1e6 / c.misurati as f64)
    });
    Ok(Risultato {
        scenario: match a.scenario {
            Scenario::Signed => "signed",
            Scenario::Unsigned => "unsigned",
            Scenario::Echo => "echo",
        },
        store: match a.store {
            BenchStore::Sled => "sled",
            BenchStore::Postgres => "postgres",
        },
        nodes: a.nodes,
        payload_kb: a.payload_kb,
        payload_bytes,
        request_bytes,
        concurrency: a.concurrency,
        duration_s: carico.finestra,
        exchanges: carico.misurati,
        exchanges_per_s: rate,
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        max_ms: q(1.0),
        errors: carico.errori,
        first_error: carico.primo_errore,
        idle_rss_mb: idle_rss,
        peak_rss_mb: peak_rss,
        store_bytes_per_exchange: (stored > 0 && bytes_after > bytes_before)
            .then(|| (bytes_after - bytes_before) as f64 / stored as f64),
        stored_before,
        server_cores: cores,
        rsa_sign_per_core_per_s: per_core,
        rsa_sign_ceiling_per_s: ceiling,
        ratio_to_ceiling: signed.then(|| rate / ceiling),
        ran_out_of_requests: carico.esauriti,
        server_cpu_us_per_exchange: server_cpu,
        client_cpu_us_per_exchange: per_scambio(carico.cpu_client),
        rsa_sign_us,
        efficiency: server_cpu.filter(|_| signed).map(|c| rsa_sign_us / c),
        echo_exchanges_per_s: eco_rate,
        echo_server_cpu_us_per_request: eco_cpu,
        ratio_to_echo: eco_rate.filter(|r| *r > 0.0).map(|r| rate / r),
    })
}

fn stampa(r: &Risultato) {
    println!(
        "pdd bench: {} exchanges, {} KB Candidatura ({} bytes; requests {} bytes), concurrency {}, {:.1} s, store {} ({} node{})",
        r.scenario,
        r.payload_kb,
        r.payload_bytes,
        r.request_bytes,
        r.concurrency,
        r.duration_s,
        r.store,
        r.nodes,
        if r.nodes == 1 { "" } else { "s" }
    );
    println!(
        "  throughput   {:>10.0} exchanges/s ({} exchanges, {} errors)",
        r.exchanges_per_s, r.exchanges, r.errors
    );
    println!(
        "  latency      p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
    );
    println!(
        "  server RSS   {:.1} MB idle, {:.1} MB peak",
        r.idle_rss_mb, r.peak_rss_mb
    );
    match r.store_bytes_per_exchange {
        Some(b) => println!(
            "  store        {b:.0} bytes per exchange ({} exchanges stored before the run)",
            r.stored_before
        ),
        None => println!("  store        growth not measurable in this run"),
    }
    println!(
        "  RSA-2048     {:.0} signatures/s per core × {} cores = ceiling {:.0}/s",
        r.rsa_sign_per_core_per_s, r.server_cores, r.rsa_sign_ceiling_per_s
    );
    if let Some(x) = r.ratio_to_ceiling {
        println!("  ratio        {:.1} % of the RSA-sign ceiling", x * 100.0);
    }
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0} µs"));
    println!(
        "  CPU          server {} per exchange, client {} per exchange, one RSA signature {:.0} µs",
        us(r.server_cpu_us_per_exchange),
        us(r.client_cpu_us_per_exchange),
        r.rsa_sign_us
    );
    if let Some(e) = r.efficiency {
        println!("  efficiency   {e:.2} (one RSA signature ÷ server CPU per exchange)");
    }
    if let (Some(e), Some(x)) = (r.echo_exchanges_per_s, r.ratio_to_echo) {
        println!(
            "  echo         {e:.0} requests/s, server {} per request: this run is {:.2} of it",
            us(r.echo_server_cpu_us_per_request),
            x
        );
    }
    if let Some(e) = &r.first_error {
        println!("  first error  {e}");
    }
    if r.ran_out_of_requests {
        println!("  note         the prepared requests ran out before the end: pass --requests");
    }
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on one thread, as the gateway makes them
/// (over a SignedInfo-sized input), for about a second.
fn rsa_per_core(key: &PKey<Private>) -> Result<f64, String> {
    let data = [0x5au8; 900];
    let firma = || -> Result<(), String> {
        let mut s = openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key)
            .map_err(|e| e.to_string())?;
        s.update(&data).map_err(|e| e.to_string())?;
        s.sign_to_vec().map_err(|e| e.to_string())?;
        Ok(())
    };
    for _ in 0..20 {
        firma()?;
    }
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < Duration::from_millis(1000) {
        firma()?;
        n += 1;
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The run's keys (a throw-away CA, the gateway's (LAZIO) certificate and the partner's, the
/// Ministry's), kept in the data directory for later runs.
struct Pki {
    ca: X509,
    ca_path: PathBuf,
    gateway: kit::KeyPair,
    partner: kit::KeyPair,
    client_key: PKey<Private>,
    client_cert: X509,
}

impl Pki {
    fn in_dir(dir: &Path) -> Result<Pki, String> {
        let e = |e: kit::KitError| e.to_string();
        let ca = kit::Pki::in_dir(dir, "pdd bench CA").map_err(e)?;
        let gateway = ca.issued_once("lazio", "LAZIO").map_err(e)?;
        let partner = ca.issued_once("ministero", "MinisteroLavoro").map_err(e)?;
        let (client_key, client_cert) = partner.read().map_err(e)?;
        Ok(Pki {
            ca: ca.ca_cert.clone(),
            ca_path: ca.ca_path(),
            gateway,
            partner,
            client_key,
            client_cert,
        })
    }
}

#[allow(clippy::too_many_arguments, reason = "one configuration file")]
fn configurazione(
    listen: SocketAddr,
    local: SocketAddr,
    store: &Path,
    pki: &Pki,
    signed: bool,
    concurrency: usize,
    ttl_secs: i64,
) -> String {
    let p = |f: &Path| f.display().to_string();
    format!(
        r#"# Written by pdd bench: a regional node receiving the Ministry's CVs.
listen = "{listen}"
local_listen = "{local}"
data = "{store}"
role = "nr"

[soggetto]
nome = "LAZIO"

[tls]
cert = "{cert}"
key = "{key}"
ca = ["{ca}"]

[wssec]
firma = {signed}
verifica = "{verifica}"
timestamp_ttl_secs = {ttl_secs}

[limits]
# One partner drives every connection of the run.
partner_concurrency = {conc}

[porta_delegata]
destinatario = "SPC/MinisteroLavoro"

[[registry.soggetti]]
nome = "MinisteroLavoro"
url = "https://127.0.0.1:9/pdd/PA"
cert = "{partner}"
"#,
        store = store.display(),
        cert = p(&pki.gateway.cert),
        key = p(&pki.gateway.key),
        ca = p(&pki.ca_path),
        partner = p(&pki.partner.cert),
        verifica = if signed { "required" } else { "off" },
        conc = concurrency.max(64),
    )
}

/// Realistic work experiences that pad a Candidatura to the size asked for.
const MANSIONI: [(&str, &str, &str); 4] = [
    (
        "3.3.1.2.1",
        "Addetta alla contabilità generale",
        "Prima nota, riconciliazioni bancarie, fatturazione attiva e passiva, liquidazioni IVA periodiche, supporto alla redazione del bilancio d'esercizio e ai rapporti con il consulente fiscale",
    ),
    (
        "4.1.1.1.0",
        "Impiegata amministrativa",
        "Gestione della corrispondenza e del protocollo, archiviazione digitale dei documenti, tenuta dello scadenziario dei pagamenti, rapporti con fornitori e clienti, inserimento ordini nel gestionale",
    ),
    (
        "5.1.2.2.0",
        "Commessa di negozio",
        "Accoglienza e consulenza alla clientela, allestimento delle vetrine e degli espositori, gestione della cassa e delle chiusure giornaliere, controllo delle giacenze e ricevimento merci",
    ),
    (
        "3.4.1.2.2",
        "Organizzatrice di eventi",
        "Pianificazione di convegni e fiere di settore, negoziazione con fornitori e sedi, gestione del budget e delle iscrizioni, coordinamento del personale di sala e dei rapporti con la stampa",
    ),
];

/// A valid Candidatura (modulo 2.0, ambito nazionale) with its own code, about `target` bytes.
fn candidatura(n: usize, oggi: NaiveDate, target: usize) -> String {
    let scadenza = oggi + chrono::Duration::days(44);
    let testa = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<cl:Candidatura xmlns:cl=\"http://servizi.lavoro.gov.it/candidatura\"><cl:Lavoratore><cl:DatiAnagrafici><cl:codicefiscale>BNCLRA85M41F205C</cl:codicefiscale><cl:cognome>BIANCHI</cl:cognome><cl:nome>LAURA</cl:nome><cl:sesso>F</cl:sesso><cl:datanascita>1985-08-01</cl:datanascita><cl:idcomune>F205</cl:idcomune><cl:idcittadinanza>000</cl:idcittadinanza></cl:DatiAnagrafici><cl:Domicilio><cl:idcomune>H501</cl:idcomune><cl:cap>00184</cl:cap></cl:Domicilio><cl:Recapiti><cl:indirizzo>Via Cavour 12</cl:indirizzo><cl:email>laura.bianchi@example.it</cl:email></cl:Recapiti></cl:Lavoratore><cl:DatiCurriculari>";
    let coda = format!(
        "<cl:ProfessioneDesiderataDisponibilita><cl:idprofessione>3.3.1.2.1</cl:idprofessione><cl:descrprofessione>Contabile</cl:descrprofessione><cl:esperienzasettore>SI</cl:esperienzasettore><cl:trasferte>NO</cl:trasferte><cl:idmodalitalavorativa>FT</cl:idmodalitalavorativa><cl:mezzitrasporto>SI</cl:mezzitrasporto><cl:disponibilitaterritoriale>12</cl:disponibilitaterritoriale></cl:ProfessioneDesiderataDisponibilita></cl:DatiCurriculari><cl:DatiSistema><cl:ambitodiffusione>02</cl:ambitodiffusione><cl:datainserimento>{oggi}</cl:datainserimento><cl:datascadenza>{scadenza}</cl:datascadenza><cl:email>cpi.roma@example.it</cl:email><cl:tipocandidatura>01</cl:tipocandidatura><cl:codicecandidatura>SILRM{:04}{n:016}</cl:codicecandidatura><cl:percettore>NO</cl:percettore></cl:DatiSistema></cl:Candidatura>",
        oggi.year() % 10_000
    );
    let mut s = String::with_capacity(target + 1024);
    s.push_str(testa);
    let mut i = 0usize;
    while s.len() + coda.len() < target {
        let (q, d, m) = MANSIONI[(n + i) % MANSIONI.len()];
        let anno = 1990 + (i % 30);
        s.push_str(&format!(
            "<cl:EsperienzeLavorative><cl:tipoesperienza>A.02.00</cl:tipoesperienza><cl:qualificasvolta>{q}</cl:qualificasvolta><cl:descrqualificasvolta>{d}</cl:descrqualificasvolta><cl:principalimansioni>{m}</cl:principalimansioni><cl:nomedatore>Impresa Esempio {i} S.r.l.</cl:nomedatore><cl:datainizio>{anno}-03-01</cl:datainizio><cl:datafine>{anno}-12-31</cl:datafine></cl:EsperienzeLavorative>"
        ));
        i += 1;
    }
    s.push_str(&coda);
    s
}

/// The partner's InvioCandidatura: a busta from the Ministry to LAZIO around the modulo.
fn richiesta(n: usize, modulo: &str, ora: chrono::NaiveDateTime) -> String {
    let id = format!(
        "MinisteroLavoro_MinisteroLavoroSPCoopIT_{:07}_{}",
        n + 1,
        ora.format("%Y-%m-%d_%H:%M")
    );
    let op = crate::modulo::ws::OPERAZIONI
        .iter()
        .find(|o| o.azione == "InvioCandidatura")
        .expect("InvioCandidatura is an operation");
    format!(
        r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header><eGov_IT:Intestazione xmlns:eGov_IT="http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/" soapenv:actor="http://www.cnipa.it/eGov_it/portadominio" soapenv:mustUnderstand="1"><eGov_IT:IntestazioneMessaggio><eGov_IT:Mittente><eGov_IT:IdentificativoParte tipo="SPC">MinisteroLavoro</eGov_IT:IdentificativoParte></eGov_IT:Mittente><eGov_IT:Destinatario><eGov_IT:IdentificativoParte tipo="SPC">LAZIO</eGov_IT:IdentificativoParte></eGov_IT:Destinatario><eGov_IT:ProfiloCollaborazione>EGOV_IT_ServizioSincrono</eGov_IT:ProfiloCollaborazione><eGov_IT:Servizio tipo="SPC">ClicLavoro</eGov_IT:Servizio><eGov_IT:Azione>InvioCandidatura</eGov_IT:Azione><eGov_IT:Messaggio><eGov_IT:Identificatore>{id}</eGov_IT:Identificatore><eGov_IT:OraRegistrazione tempo="EGOV_IT_SPC">{ora}</eGov_IT:OraRegistrazione></eGov_IT:Messaggio><eGov_IT:ProfiloTrasmissione inoltro="EGOV_IT_ALPIUUNAVOLTA" confermaRicezione="false"/></eGov_IT:IntestazioneMessaggio></eGov_IT:Intestazione></soapenv:Header><soapenv:Body>{corpo}</soapenv:Body></soapenv:Envelope>"#,
        ora = ora.format("%Y-%m-%dT%H:%M:%S"),
        corpo = crate::modulo::ws::richiesta(op, modulo),
    )
}

/// N distinct requests, on every core (signing is most of it).
fn prepara(
    primo: usize,
    n: usize,
    target: usize,
    signed: bool,
    pki: &Pki,
    ttl_secs: i64,
) -> Result<(Vec<Bytes>, usize), String> {
    let now = chrono::Local::now();
    // Identificatori carry the minute; the counter keeps them distinct within it.
    let ora = now.naive_local();
    let oggi = ora.date();
    let payload = candidatura(0, oggi, target).len();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = n.div_ceil(cores);
    let mut out: Vec<Bytes> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let parti: Vec<_> = (0..cores)
            .map(|t| {
                s.spawn(move || -> Result<Vec<Bytes>, String> {
                    let (da, a) = (t * per, ((t + 1) * per).min(n));
                    let mut v = Vec::with_capacity(a.saturating_sub(da));
                    for i in (da + primo)..(a + primo) {
                        let msg = richiesta(i, &candidatura(i, oggi, target), ora);
                        let msg = if signed {
                            dsig::firma(
                                &msg,
                                &pki.client_key,
                                &pki.client_cert,
                                now.with_timezone(&chrono::Utc),
                                chrono::Duration::seconds(ttl_secs),
                                dsig::Copertura::IntestazioneMessaggio,
                            )
                            .map_err(|e| format!("signing request {i}: {e}"))?
                        } else {
                            msg
                        };
                        v.push(Bytes::from(msg));
                    }
                    Ok(v)
                })
            })
            .collect();
        for p in parti {
            out.extend(
                p.join()
                    .map_err(|_| "a preparing thread panicked".to_string())??,
            );
        }
        Ok::<_, String>(())
    })?;
    Ok((out, payload))
}

/// Bytes of the files under `dir`.
fn dimensione(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dimensione(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Exchanges earlier runs left in a kept data directory.
fn conta_scambi(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("exchanges"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `pdd serve`, run by this very binary.
struct Server {
    child: Child,
}

impl Server {
    fn start(
        conf: &Path,
        log: &Path,
        local: SocketAddr,
        wrapper: Option<&str>,
        comando: &str,
    ) -> Result<Server, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let log_file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut cmd = match wrapper.map(|w| w.split_whitespace().collect::<Vec<_>>()) {
            Some(w) if !w.is_empty() => {
                let mut c = Command::new(w[0]);
                c.args(&w[1..]).arg(exe);
                c
            }
            _ => Command::new(exe),
        };
        let child = cmd
            .arg("--config")
            .arg(conf)
            .arg(comando)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start pdd serve: {e}"))?;
        let mut s = Server { child };
        let t = Instant::now();
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                let log = std::fs::read_to_string(log).unwrap_or_default();
                return Err(format!("pdd {comando} exited ({st}):\n{log}"));
            }
            if salute(local) {
                return Ok(s);
            }
            // Opening a large store rebuilds the moduli index: minutes for millions.
            if t.elapsed() > Duration::from_secs(600) {
                return Err(format!(
                    "pdd serve did not answer /health on {local} within 600 s (log: {})",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A line of /proc/PID/status, in kB.
    fn rss_kb(&self, campo: &str) -> Option<u64> {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        s.lines()
            .find(|l| l.starts_with(campo))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    fn stop(mut self) -> Result<(), String> {
        // SIGTERM: the server finishes, flushes and lets the store go.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err("pdd serve did not stop within 30 s of SIGTERM".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn salute(local: SocketAddr) -> bool {
    let Ok(mut c) = TcpStream::connect_timeout(&local, Duration::from_millis(200)) else {
        return false;
    };
    let _ = c.set_read_timeout(Some(Duration::from_secs(2)));
    if c.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut s = String::new();
    let _ = c.read_to_string(&mut s);
    s.starts_with("HTTP/1.1 200") || s.starts_with("HTTP/1.0 200")
}

struct Carico {
    /// Exchanges completed inside the measured window (errors excluded).
    misurati: u64,
    /// Latencies of those, in µs.
    latenze: Vec<u32>,
    /// Answers received, warm-up included (each one is a stored exchange).
    risposte: u64,
    errori: u64,
    primo_errore: Option<String>,
    finestra: f64,
    esauriti: bool,
    /// Requests taken from the prepared ones.
    presi: usize,
    /// CPU seconds (user + system) over the window: the servers', this process's.
    cpu_server: Option<f64>,
    cpu_client: Option<f64>,
}

/// User + system CPU seconds a process has used so far, its exited threads included: from the
/// process's CPU-time clock (nanoseconds), else `/proc/PID/stat` (clock ticks of 10 ms, too
/// coarse for a short run of a light server: the echo's 400 requests take about 4 ms).
fn cpu_secondi(pid: &str) -> Option<f64> {
    let clock = if pid == "self" {
        Some(libc::CLOCK_PROCESS_CPUTIME_ID)
    } else {
        pid.parse::<libc::pid_t>().ok().and_then(|n| {
            let mut c: libc::clockid_t = 0;
            // SAFETY: writes only into `c`; a process that has gone yields an error.
            (unsafe { libc::clock_getcpuclockid(n, &mut c) } == 0).then_some(c)
        })
    };
    if let Some(clock) = clock {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: writes only into `t`.
        if unsafe { libc::clock_gettime(clock, &mut t) } == 0 {
            return Some(t.tv_sec as f64 + t.tv_nsec as f64 / 1e9);
        }
    }
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let dopo = &s[s.rfind(')')? + 2..];
    let campi: Vec<&str> = dopo.split_whitespace().collect();
    let utime: f64 = campi.get(11)?.parse().ok()?;
    let stime: f64 = campi.get(12)?.parse().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (tick > 0).then(|| (utime + stime) / tick as f64)
}

/// The CPU seconds of the servers (summed) and of this process, now.
fn campione_cpu(pids: &[u32]) -> (Option<f64>, Option<f64>) {
    let server = pids
        .iter()
        .map(|p| cpu_secondi(&p.to_string()))
        .sum::<Option<f64>>();
    (server, cpu_secondi("self"))
}

#[derive(Default)]
struct PerConnessione {
    latenze: Vec<u32>,
    risposte: u64,
    errori: u64,
    primo_errore: Option<String>,
}

fn client_tls(pki: &Pki) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(
            pki.ca.to_der().map_err(|e| e.to_string())?,
        ))
        .map_err(|e| e.to_string())?;
    let chain = vec![CertificateDer::from(
        pki.client_cert.to_der().map_err(|e| e.to_string())?,
    )];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pki.client_key
            .private_key_to_pkcs8()
            .map_err(|e| e.to_string())?,
    ));
    let c = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .map_err(|e| e.to_string())?;
    Ok(Arc::new(c))
}

fn carica(
    pki: &Pki,
    addrs: &[SocketAddr],
    richieste: Vec<Bytes>,
    a: &BenchArgs,
    pids: &[u32],
    ok: &'static [u8],
) -> Result<Carico, String> {
    let tls = client_tls(pki)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let richieste = Arc::new(richieste);
    let prossima = Arc::new(AtomicUsize::new(0));
    let fine = Arc::new(AtomicBool::new(false));
    let esauriti = Arc::new(AtomicBool::new(false));
    let inizio = Instant::now();
    let misura_da = inizio + Duration::from_secs_f64(a.warmup);
    let misura_a = misura_da + Duration::from_secs_f64(a.duration);
    let per_conn = rt.block_on(async {
        let mut compiti = Vec::with_capacity(a.concurrency);
        for k in 0..a.concurrency {
            // Spread over the nodes as a load balancer would, one connection at a time.
            let addr = addrs[k % addrs.len()];
            let (tls, richieste, prossima, fine, esauriti) = (
                tls.clone(),
                richieste.clone(),
                prossima.clone(),
                fine.clone(),
                esauriti.clone(),
            );
            compiti.push(tokio::spawn(async move {
                connessione(
                    tls, addr, richieste, prossima, fine, esauriti, misura_da, misura_a, ok,
                )
                .await
            }));
        }
        // CPU sampled at the window's edges (its end: when it closes, or when the requests ran
        // out before).
        let pids_cpu = pids.to_vec();
        let inizio_cpu = tokio::spawn(async move {
            tokio::time::sleep_until(misura_da.into()).await;
            campione_cpu(&pids_cpu)
        });
        let stop = fine.clone();
        let pids_cpu = pids.to_vec();
        let fine_cpu = tokio::spawn(async move {
            tokio::time::sleep_until(misura_a.into()).await;
            let c = campione_cpu(&pids_cpu);
            stop.store(true, Ordering::Relaxed);
            c
        });
        let mut tutti = Vec::with_capacity(compiti.len());
        for c in compiti {
            tutti.push(c.await.unwrap_or_default());
        }
        let fine_cpu = if fine_cpu.is_finished() {
            fine_cpu.await.unwrap_or((None, None))
        } else {
            fine_cpu.abort();
            campione_cpu(pids)
        };
        let inizio_cpu = if inizio_cpu.is_finished() {
            inizio_cpu.await.unwrap_or((None, None))
        } else {
            // The requests ran out within the warm-up: no window.
            inizio_cpu.abort();
            (None, None)
        };
        (tutti, inizio_cpu, fine_cpu)
    });
    let (per_conn, (srv0, cli0), (srv1, cli1)) = per_conn;
    let delta = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    // The window is shorter when the requests ran out.
    let finito = Instant::now().min(misura_a);
    let finestra = finito.saturating_duration_since(misura_da).as_secs_f64();
    let mut c = Carico {
        misurati: 0,
        latenze: Vec::new(),
        risposte: 0,
        errori: 0,
        primo_errore: None,
        finestra: finestra.max(1e-3),
        esauriti: esauriti.load(Ordering::Relaxed),
        presi: prossima.load(Ordering::Relaxed).min(richieste.len()),
        cpu_server: delta(srv0, srv1),
        cpu_client: delta(cli0, cli1),
    };
    for p in per_conn {
        c.misurati += p.latenze.len() as u64;
        c.latenze.extend(p.latenze);
        c.risposte += p.risposte;
        c.errori += p.errori;
        if c.primo_errore.is_none() {
            c.primo_errore = p.primo_errore;
        }
    }
    Ok(c)
}

type Mittente = crate::server::client::Connessione;

#[allow(
    clippy::too_many_arguments,
    reason = "one connection's share of the run"
)]
async fn connessione(
    tls: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    richieste: Arc<Vec<Bytes>>,
    prossima: Arc<AtomicUsize>,
    fine: Arc<AtomicBool>,
    esauriti: Arc<AtomicBool>,
    misura_da: Instant,
    misura_a: Instant,
    atteso: &'static [u8],
) -> PerConnessione {
    let mut p = PerConnessione::default();
    let errore = |p: &mut PerConnessione, e: String| {
        p.errori += 1;
        if p.primo_errore.is_none() {
            p.primo_errore = Some(e);
        }
    };
    let mut mittente: Option<Mittente> = None;
    while !fine.load(Ordering::Relaxed) {
        let i = prossima.fetch_add(1, Ordering::Relaxed);
        let Some(corpo) = richieste.get(i) else {
            esauriti.store(true, Ordering::Relaxed);
            fine.store(true, Ordering::Relaxed);
            break;
        };
        let m = match &mut mittente {
            Some(m) => m,
            None => match Mittente::apri(tls.clone(), addr).await {
                Ok(m) => mittente.insert(m),
                Err(e) => {
                    errore(&mut p, e.to_string());
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let t = Instant::now();
        let esito = m
            .post_soap("/pdd/PA", "\"InvioCandidatura\"", corpo.clone())
            .await;
        let fatto = Instant::now();
        match esito {
            Ok((status, body)) => {
                p.risposte += 1;
                let ok = status == 200 && memmem(&body, atteso);
                if !ok {
                    let testo = String::from_utf8_lossy(&body);
                    errore(
                        &mut p,
                        format!(
                            "HTTP {status}: {}",
                            testo.chars().take(600).collect::<String>()
                        ),
                    );
                } else if t >= misura_da && fatto <= misura_a {
                    p.latenze.push(
                        u32::try_from(fatto.duration_since(t).as_micros()).unwrap_or(u32::MAX),
                    );
                }
            }
            Err(e) => {
                errore(&mut p, e.to_string());
                mittente = None;
            }
        }
    }
    p
}

fn memmem(h: &[u8], n: &[u8]) -> bool {
    h.windows(n.len()).any(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_candidature_are_valid_distinct_and_near_the_size_asked() {
        let oggi = chrono::Local::now().date_naive();
        let ctx = crate::modulo::Contesto {
            ricevuto: oggi,
            versione: None,
        };
        for (target, n) in [(1024, 1usize), (50 * 1024, 2), (400 * 1024, 3)] {
            let c = candidatura(n, oggi, target);
            assert!(
                c.len() <= target + 1024 && c.len() + 1024 >= target,
                "{}",
                c.len()
            );
            let esito = crate::modulo::valida(c.as_bytes(), &ctx);
            assert!(esito.valido(), "{target}: {:?}", esito.problemi);
            assert_ne!(c, candidatura(n + 1, oggi, target));
        }
    }
}
