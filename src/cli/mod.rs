//! The command line (clap).

mod bench;
pub mod certs;
mod config;
mod intermediari;
mod probe;
mod rete;
mod shell;
mod store;
mod tracce;
mod trust;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::clock::SystemClock;
use crate::config::Config;
use crate::egov::validate::{self, Giudizio};
use crate::gateway::Gateway;
use crate::store::{Exchange, PgOptions, PgStore, SledStore, Store, StoreError};

/// `pdd --version`: the crate's version and the git revision it was built from (see build.rs),
/// e.g. `0.1.0 (git 1a2b3c4d5e6f)`, `-dirty` after it when built with uncommitted changes.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("PDD_GIT_REVISION"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "pdd",
    version = VERSION,
    about = "Porta di Dominio SPCoop (busta e-Gov 1.1) for ClicLavoro",
    long_about = "pdd is a Porta di Dominio for the SPCoop network: it receives SOAP 1.1 messages \
carrying a busta e-Gov on its porta applicativa (POST /pdd/PA), validates them as the standard \
says, stores every exchange durably in an embedded store, hands the payload to a service and \
answers synchronously. Local systems send plain SOAP to the porta delegata \
(POST /pdd/PD/{Servizio}/{Azione}) and pdd wraps it in a busta for the partner.\n\n\
With no --config, pdd runs on embedded defaults: listen on 127.0.0.1:8700, data in ./pdd-data, \
own soggetto SPC/MinisteroLavoro, a demo registry with the regions, INPS and the ClicLavoro service."
)]
pub struct Cli {
    /// TOML configuration file (every key is documented in examples/pdd.toml).
    #[arg(long, short, global = true, env = "PDD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the store (overrides the config's `data`).
    #[arg(long, global = true, env = "PDD_DATA")]
    pub data: Option<PathBuf>,
    /// Log format on stderr; the level comes from RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway. The store is checked before listening. Exit 0 after a clean stop
    /// (SIGTERM, Ctrl-C); 2 bad configuration; 3 store unavailable (held by another pdd) or
    /// damaged; 4 cannot listen (address in use).
    Serve(ServeArgs),
    /// Validate a message's busta offline and print the eccezioni it would raise
    /// (exit 0: accepted; 1: refused; 2: unreadable file or bad configuration).
    Check(CheckArgs),
    /// The configuration: `pdd config check` explains every problem in it.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Look at stored exchanges; export them as CNIPA traces.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Diagnostic messages (refusals, porta delegata failures, outbox retries, start and
    /// stop, ...), with GovWay's severity levels.
    #[command(subcommand)]
    Diag(tracce::DiagCommand),
    /// Make our key and certificate (or a certificate signing request).
    #[command(subcommand)]
    Certs(trust::CertsCommand),
    /// Partners: add, list, show, remove (live: a running gateway takes them at once).
    #[command(subcommand)]
    Partner(trust::PartnerCommand),
    /// Sign a SOAP message with WS-Security (our key and certificate); writes it to stdout.
    Sign(trust::SignArgs),
    /// Check a signed SOAP message offline and say which check fails
    /// (exit 0: valid; 1: invalid; 2: unreadable).
    Verify(trust::VerifyArgs),
    /// Validate ClicLavoro moduli (Candidatura, Vacancy, Messaggio), bare or inside a SOAP
    /// message, and print every problem as `path: message [code]`
    /// (exit 0: all valid; 1: some invalid; 2: unreadable input).
    Validate(ValidateArgs),
    /// The NCN's forwards waiting for delivery: list them, queue refused ones again.
    #[command(subcommand)]
    Outbox(rete::OutboxCommand),
    /// EURES documents (Europass CVs of European-scope candidature, vacancies).
    #[command(subcommand)]
    Eures(rete::EuresCommand),
    /// Import reference data (the percettori's last employment records).
    #[command(subcommand)]
    Import(rete::ImportCommand),
    /// Users of the read API (/api/candidature, /api/vacancies), who see contact data.
    #[command(subcommand)]
    Users(rete::UsersCommand),
    /// The register of the intermediaries accredited with this node: the moduli its local
    /// systems publish name one of them (their DatiSistema are filled from it), or are refused.
    #[command(subcommand)]
    Intermediari(intermediari::IntermediariCommand),
    /// Probe a partner's porta applicativa with a battery of buste (a valid exchange, a
    /// duplicate, an expired busta, an unknown Mittente, a bad date, no busta, SOAP 1.2, a wrong
    /// Manifest, a broken signature) and report, case by case, whether it answers as the standard asks
    /// (exit 0: all; 1: some did not; 2: unreachable or bad arguments).
    Probe(probe::ProbeArgs),
    /// The store: backup (also while the gateway runs), restore, stats, check, purge.
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Load-test a gateway: starts `pdd serve` on loopback with a throw-away PKI, drives it
    /// with prepared InvioCandidatura requests over keep-alive HTTPS with client certificates,
    /// and prints exchanges/s, latency percentiles, errors, the server's memory, the store's
    /// bytes per exchange and the machine's RSA-2048 signing ceiling (exit 1 if any exchange
    /// failed). See docs/performance.md.
    Bench(bench::BenchArgs),
    /// The echo server `pdd bench` measures the transport with (not for operators).
    #[command(hide = true)]
    BenchEco,
    /// Print the completion script for a shell, e.g.
    /// `pdd completions bash > /etc/bash_completion.d/pdd`.
    Completions(shell::CompletionsArgs),
    /// The man pages in roff: `pdd man --dir /usr/local/share/man/man1` installs pdd(1) and
    /// the page of every command it refers to (pdd-serve(1), ...); without --dir, pdd(1) alone
    /// on stdout.
    Man(shell::ManArgs),
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Files holding a modulo, or a SOAP message carrying one (invioCandidatura, …).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Version of the standard: 2.0, rev038 or rev064 (vacancies; the others follow rev038
    /// under it). Default: detected from the content.
    #[arg(long, value_parser = parse_versione)]
    pub versione: Option<crate::modulo::Versione>,
    /// Judge as of this time (its day is the day of receipt for the validity rules) instead of
    /// now: RFC 3339, or local yyyy-MM-ddTHH:mm:ss or yyyy-MM-dd.
    #[arg(long, alias = "oggi", value_parser = istante)]
    pub now: Option<chrono::DateTime<chrono::FixedOffset>>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn parse_versione(s: &str) -> Result<crate::modulo::Versione, String> {
    crate::modulo::Versione::parse(s).ok_or_else(|| format!("'{s}': use 2.0, rev038 or rev064"))
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Listen address (overrides the config's `listen`).
    #[arg(long, env = "PDD_LISTEN")]
    pub listen: Option<SocketAddr>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// A SOAP message with a busta e-Gov header.
    pub file: PathBuf,
    /// Judge as of this time instead of now (useful for old samples): RFC 3339, or local
    /// yyyy-MM-ddTHH:mm:ss or yyyy-MM-dd.
    #[arg(long, value_parser = istante)]
    pub now: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Output: text (the default) or json.
    #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// The most recent exchanges, newest first.
    List {
        /// How many.
        #[arg(long, short = 'n', default_value_t = 20)]
        limit: usize,
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// One exchange, by Identificatore (request or response) or by sequence number.
    Show {
        /// The Identificatore of the request or of the response (as `trace list` shows it),
        /// or the exchange's sequence number.
        id: String,
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Export traces in the CNIPA form (Tracciamento.xsd), two per exchange (request and
    /// response, each with the busta found in the stored message): one exchange
    /// (`export ID|SEQ`) or those received in a period (`export --since DATE [--until DATE]`).
    Export(tracce::ExportArgs),
}

/// `--format text|json`, as a flag: whether JSON was asked for.
pub(crate) fn formato_json(s: &str) -> Result<bool, String> {
    match s {
        "json" => Ok(true),
        "text" => Ok(false),
        _ => Err(format!("'{s}': use text or json")),
    }
}

/// A time given on the command line (every `--now`, `--since`, `--until`): RFC 3339
/// (`2026-11-27T08:00:00+01:00`, `…Z`), or a local time `yyyy-MM-ddTHH:mm[:ss[.fff]]` (`T` or a
/// space), or a local day `yyyy-MM-dd` (its midnight).
pub(crate) fn istante(s: &str) -> Result<chrono::DateTime<chrono::FixedOffset>, String> {
    use chrono::TimeZone;
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t);
    }
    let locale = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(chrono::NaiveTime::MIN))
    })
    .ok_or_else(|| {
        format!(
            "'{s}': use RFC 3339 (2026-11-27T08:00:00+01:00), a local time (2026-11-27T08:00) or a day (2026-11-27)"
        )
    })?;
    chrono::Local
        .from_local_datetime(&locale)
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| format!("'{s}': not a time that exists here (a clock change)"))
}

/// A duration given on the command line: `10s`, `2m`, `1h`, `500ms`, or seconds (`10`, `2.5`).
pub(crate) fn durata(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (numero, unita) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = numero
        .trim()
        .parse()
        .map_err(|_| format!("'{s}': use a number and s, m, h or ms (10s, 2m, 1h)"))?;
    let per = match unita {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("'{s}': unknown unit '{u}': use s, m, h or ms")),
    };
    std::time::Duration::try_from_secs_f64(n * per).map_err(|_| format!("'{s}': not a duration"))
}

/// [`durata`] in seconds.
pub(crate) fn durata_secondi(s: &str) -> Result<f64, String> {
    durata(s).map(|d| d.as_secs_f64())
}

/// The arguments as clap reads them: `--json`, the older spelling, is `--format json`.
fn argomenti(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    args.flat_map(|a| {
        if a == "--json" {
            vec!["--format".into(), "json".into()]
        } else {
            vec![a]
        }
    })
    .collect()
}

pub fn run() -> ExitCode {
    let cli = Cli::parse_from(argomenti(std::env::args_os()));
    init_logging(cli.log_format);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pdd: {e}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours for a terminal only: journald and log files get plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Pretty => {
            let _ = builder.try_init();
        }
        LogFormat::Json => {
            let _ = builder.json().try_init();
        }
    }
}

/// The PostgreSQL store's options when the configuration asks for that engine.
pub(crate) fn pg_options(config: &Config) -> Result<Option<PgOptions>, String> {
    match config.store.engine {
        crate::config::Engine::Sled => Ok(None),
        crate::config::Engine::Postgres => {
            let url = config
                .store
                .url()
                .ok_or("[store] engine = \"postgres\" needs [store] url (or PDD_STORE_URL)")?;
            let mut o = PgOptions::new(url);
            o.pool = config.store.pool.max(1);
            o.ca = config.store.ca.clone();
            Ok(Some(o))
        }
    }
}

fn load_config(cli: &Cli) -> Result<Config, String> {
    let mut config = match &cli.config {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(d) = &cli.data {
        config.data = d.clone();
    }
    Ok(config)
}

fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    // Completions and man pages come from the CLI definition alone: a packager makes them
    // without any configuration.
    // `config check` reads the file itself, to explain what is wrong with it.
    if let Command::Config(c) = cli.command {
        return config::config(cli.config.as_deref(), c);
    }
    let config = if matches!(
        cli.command,
        Command::Completions(_) | Command::Man(_) | Command::Bench(_)
    ) {
        Config::default()
    } else {
        load_config(&cli)?
    };
    // Not for the commands that hold connections (the servers, the load generator, the probe):
    // their vectored writes to a socket the peer closed raise SIGPIPE too, which would kill them
    // silently (the bench with its servers left running) instead of giving an error to report.
    if !matches!(
        cli.command,
        Command::Serve(_) | Command::Bench(_) | Command::BenchEco | Command::Probe(_)
    ) {
        // Like other Unix tools, stop quietly when the reader of our output goes away
        // (`pdd trace list | head`); Rust ignores SIGPIPE and println! would panic.
        // SAFETY: setting a signal disposition before any thread of ours is started.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    // What SIGHUP reads again: the same file, with the same --data.
    let ricarica = Ricarica {
        file: cli.config.clone(),
        data: cli.data.clone(),
    };
    match cli.command {
        Command::Serve(args) => serve(config, args, ricarica),
        Command::Check(args) => check(config, args),
        Command::Config(c) => config::config(None, c),
        Command::Trace(t) => trace(config, t),
        Command::Diag(c) => tracce::diag(&config, c),
        Command::Validate(args) => validate(args),
        Command::Certs(c) => trust::certs(c),
        Command::Partner(c) => trust::partner(config, c),
        Command::Sign(a) => trust::sign(config, a),
        Command::Verify(a) => trust::verify(config, a),
        Command::Outbox(c) => rete::outbox(config, c),
        Command::Eures(c) => rete::eures(config, c),
        Command::Import(c) => rete::import(config, c),
        Command::Users(c) => rete::users(config, c),
        Command::Intermediari(c) => intermediari::intermediari(config, c),
        Command::Probe(a) => probe::probe(config, a),
        Command::Store(c) => store::store(config, c),
        Command::Completions(a) => shell::completions(a),
        Command::Man(a) => shell::man(a),
        Command::Bench(a) => bench::bench(a),
        Command::BenchEco => bench::eco(config),
    }
}

/// Where `serve` reads its configuration again on SIGHUP.
struct Ricarica {
    file: Option<PathBuf>,
    data: Option<PathBuf>,
}

/// On each SIGHUP, reloads the registry and the CAs from the configuration file (see
/// [`Gateway::ricarica`]); a file that does not load is reported and changes nothing.
#[cfg(unix)]
fn su_sighup(gw: Arc<Gateway>, r: Ricarica) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            let Some(file) = &r.file else {
                tracing::info!("SIGHUP: no configuration file to reload (embedded defaults)");
                continue;
            };
            let nuova = Config::load(file).map(|mut c| {
                if let Some(d) = &r.data {
                    c.data = d.clone();
                }
                c
            });
            let esito = match nuova {
                Ok(c) => gw.reload(c).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match esito {
                Ok(avvisi) => {
                    for a in &avvisi {
                        tracing::warn!("SIGHUP: {a}");
                    }
                    tracing::info!(
                        file = %file.display(),
                        partners = gw.registry().soggetti().len(),
                        "configuration reloaded: registry, partner certificates, CAs, our key and certificate"
                    );
                }
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    "SIGHUP: configuration not reloaded, the running one stays: {e}"
                ),
            }
        }
    });
}

fn serve(mut config: Config, args: ServeArgs, ricarica: Ricarica) -> Result<ExitCode, String> {
    tracing::info!(pid = std::process::id(), "pdd {VERSION} starting");
    if let Some(l) = args.listen {
        config.listen = l;
    }
    // Exit codes an orchestrator can act on: 2 configuration, 3 store, 4 address in use.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let store: Arc<dyn Store> = match pg_options(&config)? {
        Some(mut o) => {
            // The server's runtime lives as long as the store: it drives the connections.
            o.runtime = Some(rt.handle().clone());
            // A database several nodes share: this node's number must be its own.
            let numero = config
                .cluster
                .numero
                .ok_or("[store] engine = \"postgres\" needs [cluster] numero")?;
            let nome = config.nome_nodo();
            let aperto = esegui(async {
                let s = PgStore::open(&o).await?;
                s.prendi_numero(numero, &nome).await?;
                Ok::<_, StoreError>(s)
            })?;
            match aperto {
                Ok(s) => {
                    tracing::info!(node = %nome, numero, "cluster node {nome} (number {numero}) on {}", s.dove());
                    Arc::new(s)
                }
                Err(e) => {
                    eprintln!("pdd: {e}");
                    return Ok(ExitCode::from(EXIT_STORE));
                }
            }
        }
        None => match SledStore::open_waiting_with(
            &config.data,
            std::time::Duration::from_secs(2),
            crate::store::OpzioniSled {
                cache: config.store.cache_mb.max(1) << 20,
                comprimi: config.store.compression,
                ..Default::default()
            },
        ) {
            Ok(s) => {
                s.arrenditi_dopo(std::time::Duration::from_secs(
                    config.store.recover_within_secs.max(1),
                ));
                Arc::new(s)
            }
            Err(e) => {
                eprintln!("pdd: {e} (is another pdd using it?)");
                return Ok(ExitCode::from(EXIT_STORE));
            }
        },
    };
    match esegui(store.summary())? {
        Ok(riepilogo) => tracing::info!("store ({}): {riepilogo}", store.engine()),
        Err(e) => {
            eprintln!("pdd: the store is damaged or unreachable: {e}");
            return Ok(ExitCode::from(EXIT_STORE));
        }
    }
    crate::restituisci_memoria();
    // The configured registry, completed by the partners added with `pdd partner add`.
    let partners = esegui(store.partners())?.map_err(|e| e.to_string())?;
    let registry = config
        .build_registry_with(&partners)
        .map_err(|e| e.to_string())?;
    let esito = rt.block_on(async move {
        // Listened for before the gateway says it listens: a stop sent as soon as it does is a
        // clean stop, not the default disposition's kill.
        let arresto = shutdown_signal();
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => return Ok(Some((format!("cannot listen on {}: {e}", config.listen), EXIT_ADDRESS))),
        };
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        // With TLS (client certificates), the CLI and health checks use a plain loopback listener.
        let admin = if config.tls_on() {
            let a = config.local_listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
            match tokio::net::TcpListener::bind(a).await {
                Ok(l) => Some(l),
                Err(e) => return Ok(Some((format!("cannot listen on {a} (local_listen): {e}"), EXIT_ADDRESS))),
            }
        } else {
            None
        };
        let admin_addr = match &admin {
            Some(l) => l.local_addr().map_err(|e| e.to_string())?,
            None => addr,
        };
        // Tells `pdd trace` and `pdd partner` where this gateway answers while it holds the store.
        let _ = std::fs::write(config.data.join(LISTEN_FILE), admin_addr.to_string());
        let scheme = if config.tls_on() { "https" } else { "http" };
        let own = config.own();
        tracing::info!(
            listen = %addr,
            data = %config.data.display(),
            soggetto = %format!("{}/{}", own.tipo, own.nome),
            role = ?config.role,
            porta = %own.porta,
            partners = registry.soggetti().len() - 1,
            servizi = registry.servizi().len(),
            "pdd listening on {scheme}://{addr}"
        );
        if admin.is_some() {
            tracing::info!(
                "TLS with {} client certificates; local systems (porta delegata), admin and health on http://{admin_addr}",
                if config.tls.client_auth { "mandatory" } else { "no" }
            );
        }
        let local = if admin.is_some() { format!("http://{admin_addr}") } else { format!("{scheme}://{addr}") };
        tracing::info!(
            "porta applicativa: POST {scheme}://{addr}/pdd/PA — porta delegata: POST {local}/pdd/PD/{{Servizio}}/{{Azione}} — health: GET {local}/health"
        );
        if config.tls_on() {
            tracing::info!(
                "first request: curl --cert PARTNER.crt --key PARTNER.key --cacert OUR.crt -H 'Content-Type: text/xml' --data-binary @REQUEST.xml https://{addr}/pdd/PA (see README)"
            );
        } else if config.soggetto.nome == "MinisteroLavoro" {
            tracing::info!(
                "first request: curl -s -H 'Content-Type: text/xml' --data-binary @examples/richiesta-candidatura.xml http://{addr}/pdd/PA (with a fresh Identificatore: see README)"
            );
        } else {
            // The example busta is addressed to the Ministry: here it would be refused.
            tracing::info!(
                "first request: a busta addressed to {} (examples/richiesta-candidatura.xml is the Ministry's), POSTed to http://{addr}/pdd/PA, or one a local system sends through the porta delegata: see README",
                config.soggetto.nome
            );
        }
        // End-to-end tests move a node's clock (expiry) through POST /admin/clock.
        let test_clock = std::env::var("PDD_TEST_CLOCK").is_ok_and(|v| v == "1");
        let offset = Arc::new(crate::clock::OffsetClock::default());
        let clock: Arc<dyn crate::clock::Clock> = if test_clock { offset.clone() } else { Arc::new(SystemClock) };
        if test_clock {
            tracing::warn!("PDD_TEST_CLOCK=1: the clock can be moved through POST /admin/clock");
        }
        let gw = crate::server::gateway(config, registry, store, clock, test_clock.then_some(offset))
            .map_err(|e| e.to_string())?;
        let gw = Arc::new(gw);
        #[cfg(unix)]
        su_sighup(gw.clone(), ricarica);
        match crate::server::serve(gw, listener, admin, arresto).await {
            Ok(()) => Ok::<_, String>(None),
            // The final flush failed: say so with the store's exit status.
            Err(e) if e
                .get_ref()
                .is_some_and(|x| x.is::<crate::server::FlushFinale>()) =>
            {
                Ok(Some((e.to_string(), EXIT_STORE)))
            }
            Err(e) => Err(e.to_string()),
        }
    })?;
    match esito {
        None => Ok(ExitCode::SUCCESS),
        Some((e, codice)) => {
            eprintln!("pdd: {e}");
            Ok(ExitCode::from(codice))
        }
    }
}

/// `pdd serve` could not open or check its store (held by another process, or damaged).
const EXIT_STORE: u8 = 3;
/// `pdd serve` could not listen (address in use, not permitted).
const EXIT_ADDRESS: u8 = 4;

/// Ctrl-C or SIGTERM, listened for from when this is called (within the runtime), not from
/// when the future is first polled.
#[cfg(unix)]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let attendi = |s: Option<tokio::signal::unix::Signal>| async move {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    let ctrl_c = attendi(signal(SignalKind::interrupt()).ok());
    let term = attendi(signal(SignalKind::terminate()).ok());
    async move {
        tokio::select! {
            _ = ctrl_c => tracing::info!("Ctrl-C received"),
            _ = term => tracing::info!("SIGTERM received"),
        }
    }
}

#[cfg(not(unix))]
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received");
    }
}

fn check(config: Config, args: CheckArgs) -> Result<ExitCode, String> {
    let registry = config.build_registry().map_err(|e| e.to_string())?;
    let bytes = std::fs::read(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    // The busta's times are local: the instant as our clock shows it.
    let now = args
        .now
        .map_or_else(chrono::Local::now, |t| t.with_timezone(&chrono::Local))
        .naive_local();
    let own = config.own();
    let locale = |p: &crate::egov::Parte| {
        (p.tipo == own.tipo && p.nome == own.nome) || registry.soggetto(p).is_some_and(|s| s.locale)
    };
    let regole = validate::Regole {
        profilo: config.busta.profilo,
        errori_struttura: config.busta.errori_struttura,
        scadenza_minuti: config.busta.scadenza_minuti,
        tolleranza_futuro_minuti: config.busta.tolleranza_futuro_minuti,
        qualificazione: config.busta.qualificazione,
    };
    let g = validate::giudica_messaggio(
        &bytes,
        &registry,
        &locale,
        &regole,
        now,
        crate::xml::Limits::default(),
    );
    let (exit, verdict) = match &g {
        Giudizio::Illeggibile(_) | Giudizio::Fault001 { .. } => {
            (1, "refused: bare SOAP Fault EGOV_IT_001")
        }
        Giudizio::Errore { .. } => (1, "refused: error busta"),
        Giudizio::Accettata { .. } => (0, "accepted"),
    };
    let (eccezioni, reason) = match &g {
        Giudizio::Illeggibile(r) => (Vec::new(), Some(r.clone())),
        Giudizio::Fault001 { eccezioni, reason } => (eccezioni.clone(), Some(reason.clone())),
        Giudizio::Errore { eccezioni, .. } | Giudizio::Accettata { eccezioni, .. } => {
            (eccezioni.clone(), None)
        }
    };
    if args.json {
        let v = serde_json::json!({
            "file": args.file,
            "verdict": verdict,
            "reason": reason,
            "eccezioni": eccezioni,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{}: {verdict}", args.file.display());
        if let Some(r) = reason {
            println!("  {r}");
        }
        for e in &eccezioni {
            println!("  {e}");
        }
    }
    Ok(ExitCode::from(exit))
}

/// Runs a future of the store or the gateway to its end, for a command that is not a server.
pub(crate) fn esegui<F: std::future::Future>(f: F) -> Result<F::Output, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    Ok(rt.block_on(f))
}

/// File in the data directory holding the address of the gateway that has the store open.
const LISTEN_FILE: &str = "listen.addr";

/// Where commands on the store go: the store itself, or the gateway that holds it.
#[allow(
    clippy::large_enum_variant,
    reason = "one per command run; boxing would only add an indirection"
)]
pub(crate) enum Source {
    Store(Box<dyn Store>),
    Gateway(SocketAddr),
}

pub(crate) fn open_for_reading(config: &Config) -> Result<Source, String> {
    if let Some(o) = pg_options(config)? {
        // A shared database: every node and command reads it directly.
        return esegui(PgStore::open(&o))?
            .map(|s| Source::Store(Box::new(s)))
            .map_err(|e| e.to_string());
    }
    match SledStore::open(&config.data) {
        Ok(s) => Ok(Source::Store(Box::new(s))),
        Err(StoreError::Locked { .. }) => {
            // sled admits one process: ask the running gateway (loopback admin endpoints).
            let addr = std::fs::read_to_string(config.data.join(LISTEN_FILE))
                .ok()
                .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                .unwrap_or(config.listen);
            if addr.ip().is_loopback() {
                Ok(Source::Gateway(addr))
            } else {
                Err(format!(
                    "the store {} is in use by a running pdd listening on {addr}; its admin endpoints answer on loopback only",
                    config.data.display()
                ))
            }
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A request to the running gateway's admin endpoint: (status, body).
pub(crate) fn admin_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    admin_request_within(
        addr,
        method,
        path,
        body,
        Some(std::time::Duration::from_secs(30)),
    )
}

/// The same, waiting at most `timeout` for the answer (`None`: as long as the operation takes).
pub(crate) fn admin_request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Option<std::time::Duration>,
) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(5))
        .map_err(|e| {
            format!("the store is in use, and the gateway at {addr} does not answer: {e}")
        })?;
    if timeout.is_some() {
        let _ = s.set_read_timeout(timeout);
    }
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or("malformed answer from the gateway")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// GET on the running gateway's admin endpoint; `None` on 404.
fn admin_get(addr: SocketAddr, path: &str) -> Result<Option<serde_json::Value>, String> {
    let (status, body) = admin_request(addr, "GET", path, None)?;
    match status {
        200 => serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| format!("answer from the gateway: {e}")),
        404 => Ok(None),
        other => Err(format!(
            "the gateway answered HTTP {other}: {}",
            body.trim()
        )),
    }
}

fn trace(config: Config, t: TraceCommand) -> Result<ExitCode, String> {
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        return Err(format!("no store at {}", config.data.display()));
    }
    let source = open_for_reading(&config)?;
    match t {
        TraceCommand::Export(args) => tracce::export(&config, &source, args),
        TraceCommand::List { limit, json } => {
            let list: Vec<Exchange> = match &source {
                Source::Store(s) => esegui(s.recent(limit))?.map_err(|e| e.to_string())?,
                Source::Gateway(a) => {
                    let v = admin_get(*a, &format!("/admin/exchanges?limit={limit}"))?
                        .unwrap_or_default();
                    serde_json::from_value(v).map_err(|e| e.to_string())?
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else {
                print_list(&list);
            }
            Ok(ExitCode::SUCCESS)
        }
        TraceCommand::Show { id, json } => {
            let found = match &source {
                Source::Store(store) => esegui(async {
                    match store.exchange_by_id(&id).await? {
                        Some(e) => Ok(Some(e)),
                        None => match id.parse::<u64>() {
                            Ok(seq) => store.exchange(seq).await,
                            Err(_) => Ok(None),
                        },
                    }
                })?
                .map_err(|e: StoreError| e.to_string())?,
                Source::Gateway(a) => {
                    let path = format!(
                        "/admin/exchanges/{}",
                        id.replace('%', "%25").replace(' ', "%20")
                    );
                    admin_get(*a, &path)?.and_then(|v| Exchange::from_json_full(&v))
                }
            };
            let Some(e) = found else {
                eprintln!("pdd: no exchange with id or sequence '{id}'");
                return Ok(ExitCode::from(1));
            };
            print_exchange(&e, json);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_list(list: &[Exchange]) {
    println!(
        "{:>6}  {:<29}  {:<3}  {:<16}  {:<32}  {:<52}  {:<20}  HTTP",
        "SEQ", "RECEIVED", "DIR", "MITTENTE", "SERVIZIO/AZIONE", "IDENTIFICATORE", "OUTCOME"
    );
    for e in list {
        println!(
            "{:>6}  {:<29}  {:<3}  {:<16}  {:<32}  {:<52}  {:<20}  {}",
            e.seq,
            crate::clock::ora::testo(&e.received_at),
            match e.direction {
                crate::store::Direction::In => "in",
                crate::store::Direction::Out => "out",
            },
            e.mittente.as_deref().unwrap_or("-"),
            format!(
                "{}/{}",
                e.servizio.as_deref().unwrap_or("-"),
                e.azione.as_deref().unwrap_or("-")
            ),
            e.request_id.as_deref().unwrap_or("-"),
            e.outcome.as_str(),
            e.http_status
        );
    }
    if list.is_empty() {
        println!("(no exchanges)");
    }
}

fn print_exchange(e: &Exchange, json: bool) {
    let request = String::from_utf8_lossy(&e.request);
    let response = String::from_utf8_lossy(&e.response);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&e.to_json_full()).unwrap_or_default()
        );
        return;
    }
    println!("exchange {}", e.seq);
    let row = |k: &str, v: Option<&str>| println!("  {k:<16}{}", v.unwrap_or("-"));
    row(
        "direction",
        Some(if e.direction == crate::store::Direction::In {
            "in (porta applicativa)"
        } else {
            "out (porta delegata)"
        }),
    );
    row("received", Some(&crate::clock::ora::testo(&e.received_at)));
    row(
        "answered",
        e.answered_at
            .as_ref()
            .map(crate::clock::ora::testo)
            .as_deref(),
    );
    row("peer", e.peer.as_deref());
    row("request id", e.request_id.as_deref());
    row("response id", e.response_id.as_deref());
    row("mittente", e.mittente.as_deref());
    row("destinatario", e.destinatario.as_deref());
    row("servizio", e.servizio.as_deref());
    row("azione", e.azione.as_deref());
    row("profilo", e.profilo.as_deref());
    row("outcome", Some(e.outcome.as_str()));
    row("http status", Some(&e.http_status.to_string()));
    row("note", e.note.as_deref());
    for ecc in &e.eccezioni {
        println!("  eccezione       {ecc}");
    }
    println!("--- request ({} bytes)\n{request}", e.request.len());
    println!("--- response ({} bytes)\n{response}", e.response.len());
}

fn validate(args: ValidateArgs) -> Result<ExitCode, String> {
    use crate::modulo::{self, Contesto};
    let oggi = args
        .now
        .map_or_else(|| chrono::Local::now().date_naive(), |t| t.date_naive());
    let ctx = Contesto {
        ricevuto: oggi,
        versione: args.versione,
    };
    let mut exit = 0u8;
    let mut json = Vec::new();
    for f in &args.files {
        let bytes = match std::fs::read(f) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("pdd: cannot read {}: {e}", f.display());
                exit = 2;
                json.push(serde_json::json!({ "file": f, "valid": false, "error": e.to_string(), "problems": [] }));
                continue;
            }
        };
        // A whole SOAP message: the modulo is the escaped string of its invio* element.
        let modulo_bytes = match modulo::estrai_da_soap(&bytes) {
            Some(m) => m.into_bytes(),
            None => bytes,
        };
        let esito = modulo::valida(&modulo_bytes, &ctx);
        if !esito.valido() && exit == 0 {
            exit = 1;
        }
        match args.format {
            Format::Json => json.push(serde_json::json!({
                "file": f,
                "valid": esito.valido(),
                "tipo": esito.tipo,
                "versione": esito.versione,
                "scadenza": esito.scadenza,
                "problems": esito.problemi,
            })),
            Format::Text => {
                let what = match (esito.tipo, esito.versione) {
                    (Some(t), Some(v)) => format!("{} {}", t.as_str(), v.as_str()),
                    _ => "modulo".to_string(),
                };
                if esito.valido() {
                    println!("{}: valid ({what})", f.display());
                } else {
                    println!(
                        "{}: {} problem(s) ({what})",
                        f.display(),
                        esito.problemi.len()
                    );
                }
                for p in &esito.problemi {
                    println!("{p}");
                }
                if let Some(s) = esito.scadenza.as_ref().filter(|s| s.corretta) {
                    println!(
                        "  note: expiry {} set to {}, the maximum allowed",
                        s.indicata.as_deref().unwrap_or("(none)"),
                        s.applicata
                    );
                }
            }
        }
    }
    if matches!(args.format, Format::Json) {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    Ok(ExitCode::from(exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_time_format_and_one_duration_format_for_every_flag() {
        let rfc = istante("2026-11-27T08:00:00+01:00").unwrap();
        assert_eq!(rfc.to_rfc3339(), "2026-11-27T08:00:00+01:00");
        assert_eq!(istante("2026-11-27T07:00:00Z").unwrap(), rfc);
        let locale = istante("2026-11-27T08:00:00").unwrap();
        assert_eq!(
            locale.naive_local().to_string(),
            "2026-11-27 08:00:00",
            "a local time stays as written"
        );
        assert_eq!(istante("2026-11-27 08:00").unwrap(), locale);
        assert_eq!(
            istante("2026-11-27").unwrap().naive_local().to_string(),
            "2026-11-27 00:00:00"
        );
        for bad in ["27/11/2026", "2026-13-01", "ieri", ""] {
            assert!(istante(bad).is_err(), "{bad}");
        }
        for (s, secs) in [
            ("10s", 10.0),
            ("2m", 120.0),
            ("1h", 3600.0),
            ("500ms", 0.5),
            ("10", 10.0),
            ("2.5", 2.5),
        ] {
            assert_eq!(durata_secondi(s), Ok(secs), "{s}");
        }
        for bad in ["10x", "s", "-", "1d"] {
            assert!(durata(bad).is_err(), "{bad}");
        }
        assert_eq!(formato_json("json"), Ok(true));
        assert_eq!(formato_json("text"), Ok(false));
        assert!(formato_json("xml").is_err());
    }

    #[test]
    fn every_command_takes_format_json_and_the_older_json_flag() {
        for args in [
            vec!["pdd", "check", "f.xml", "--format", "json"],
            vec!["pdd", "trace", "list", "--format", "json"],
            vec!["pdd", "trace", "show", "1", "--format", "json"],
            vec!["pdd", "store", "stats", "--format", "json"],
            vec!["pdd", "outbox", "list", "--format", "json"],
            vec!["pdd", "diag", "list", "--format", "json"],
            vec![
                "pdd",
                "validate",
                "f.xml",
                "--format",
                "json",
                "--now",
                "2026-11-24",
            ],
            vec!["pdd", "bench", "--duration", "10s", "--warmup", "500ms"],
        ] {
            assert!(Cli::try_parse_from(&args).is_ok(), "{args:?}");
        }
        let vecchi = ["pdd", "trace", "list", "--json"].iter().map(Into::into);
        let cli = Cli::try_parse_from(argomenti(vecchi)).unwrap();
        assert!(matches!(
            cli.command,
            Command::Trace(TraceCommand::List { json: true, .. })
        ));
    }
}
