//! Commands of the ClicLavoro network: the outbox, EURES documents, the percettori's
//! last-employment table, API users. Each works on the store directly, or through the running
//! gateway's loopback admin endpoints when the gateway holds the store.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use super::{admin_request, open_for_reading, Source};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::modulo::rapporto::{self, Rapporto};
use crate::store::{Forward, ForwardState, RuoloConsole};

fn parse_ruolo(s: &str) -> Result<RuoloConsole, String> {
    RuoloConsole::parse(s).ok_or_else(|| format!("'{s}': use operatore or lettore"))
}

#[derive(Subcommand, Debug)]
pub enum OutboxCommand {
    /// What waits to be forwarded, and why (last error, attempts, next attempt).
    List {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Queue again the forwards the receiver refused (all, or one by its seq).
    Retry {
        /// The forward's sequence number (`outbox list` shows it); without it, every refused
        /// forward.
        seq: Option<u64>,
    },
    /// The percettori kept at the NCN and forwarded nowhere, because the region of the
    /// worker's domicile has no node in the network (or the domicile is in no region).
    Trattenuti {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum EuresCommand {
    /// Write every EURES document (Europass CVs, vacancies) into DIR, one file each.
    Export {
        /// The directory to write into (created if missing); a file already there with the
        /// same name is replaced.
        dir: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// The last employment record of workers, for percettori (NCN): a CSV with the header
    /// `codice_fiscale,qualifica,data_inizio,data_fine` (qualifica: ISTAT code; dates
    /// yyyy-MM-dd; data_fine may be empty). Exit 0: all imported; 1: some lines refused (the
    /// others are imported); 2: unreadable file.
    UltimiRapporti {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum UsersCommand {
    /// Register a user of the read API and print its token (shown once: only a hash is kept).
    /// The token alone goes to standard output, the rest to standard error, so that
    /// `TOKEN=$(pdd users add NAME)` keeps it for `Authorization: Bearer $TOKEN`. With
    /// --ruolo, a user of the operator console (/console) and its password instead.
    Add {
        /// The user's name, as the log and `users list` show it (unique).
        nome: String,
        /// A user of the operator console: operatore (reads and acts) or lettore (reads only).
        /// Its password is read from stdin with --password-stdin, else made and printed once.
        #[arg(long, value_name = "operatore|lettore", value_parser = parse_ruolo)]
        ruolo: Option<RuoloConsole>,
        /// Read the console user's password from the first line of stdin (at least 8
        /// characters).
        #[arg(long, requires = "ruolo")]
        password_stdin: bool,
    },
    /// The registered users.
    List {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Remove a user (its token stops working at once).
    Remove {
        /// The name given to `users add`.
        nome: String,
    },
}

/// A gateway over the store, for commands run while no gateway is running.
pub(super) fn offline(
    config: &Config,
    store: Box<dyn crate::store::Store>,
) -> Result<(Gateway, tokio::runtime::Runtime), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let partners = rt.block_on(store.partners()).map_err(|e| e.to_string())?;
    let registry = config
        .build_registry_with(&partners)
        .map_err(|e| e.to_string())?;
    let gw = crate::server::gateway(
        config.clone(),
        registry,
        Arc::from(store),
        Arc::new(crate::clock::SystemClock),
        None,
    )
    .map_err(|e| e.to_string())?;
    Ok((gw, rt))
}

fn store_needed(config: &Config) -> Result<(), String> {
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        return Err(format!("no store at {}", config.data.display()));
    }
    Ok(())
}

pub(super) fn admin_json(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<serde_json::Value, String> {
    let (status, answer) = admin_request(addr, method, path, body)?;
    let v: serde_json::Value = serde_json::from_str(&answer)
        .map_err(|_| format!("the gateway answered HTTP {status}: {}", answer.trim()))?;
    if status != 200 {
        return Err(v["error"].as_str().unwrap_or(answer.trim()).to_string());
    }
    Ok(v)
}

pub fn outbox(config: Config, c: OutboxCommand) -> Result<ExitCode, String> {
    store_needed(&config)?;
    match c {
        OutboxCommand::List { json } => {
            let list: Vec<Forward> = match open_for_reading(&config)? {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.outbox.elenco()).map_err(|e| e.to_string())?
                }
                Source::Gateway(addr) => {
                    serde_json::from_value(admin_json(addr, "GET", "/admin/outbox", None)?)
                        .map_err(|e| e.to_string())?
                }
            };
            if json {
                let v: Vec<serde_json::Value> = list
                    .iter()
                    .map(|i| {
                        let mut v = serde_json::to_value(i).unwrap_or_default();
                        // The document itself is long: `pdd trace` and `eures export` show it.
                        v.as_object_mut().map(|o| o.remove("corpo"));
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(ExitCode::SUCCESS);
            }
            if list.is_empty() {
                println!("outbox empty: every forward was delivered");
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:>6}  {:<22} {:<17} {:<26} {:<9} {:>5}  {:<19}  why",
                "seq", "to", "azione", "codice", "state", "tries", "next attempt"
            );
            for i in &list {
                let next = chrono::DateTime::from_timestamp_millis(i.prossimo_ms)
                    .map(|d| {
                        d.with_timezone(&chrono::Local)
                            .format("%Y-%m-%d %H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_default();
                let stato = match i.stato {
                    ForwardState::Pending => "pending",
                    ForwardState::Refused => "refused",
                };
                println!(
                    "{:>6}  {:<22} {:<17} {:<26} {:<9} {:>5}  {:<19}  {}",
                    i.seq,
                    i.destinatario,
                    i.azione,
                    i.codice,
                    stato,
                    i.tentativi,
                    if i.stato == ForwardState::Refused {
                        "-".into()
                    } else {
                        next
                    },
                    i.errore.as_deref().unwrap_or(if i.tentativi == 0 {
                        "not tried yet"
                    } else {
                        ""
                    })
                );
            }
            let refused = list
                .iter()
                .filter(|i| i.stato == ForwardState::Refused)
                .count();
            println!(
                "{} pending, {refused} refused{}",
                list.len() - refused,
                if refused > 0 {
                    " (pdd outbox retry to queue them again)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Trattenuti { json } => {
            let list: Vec<crate::gateway::outbox::Trattenuto> = match open_for_reading(&config)? {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.outbox.trattenuti())
                        .map_err(|e| e.to_string())?
                }
                Source::Gateway(addr) => serde_json::from_value(admin_json(
                    addr,
                    "GET",
                    "/admin/outbox/trattenuti",
                    None,
                )?)
                .map_err(|e| e.to_string())?,
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            if list.is_empty() {
                println!("no percettore kept here: every one reached the region of its domicile");
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<26} {:<29} {:<9} why", "codice", "received", "domicile");
            for t in &list {
                println!(
                    "{:<26} {:<29} {:<9} {}",
                    t.codice,
                    t.ricevuto,
                    t.domicilio,
                    match &t.regione {
                        Some(r) => format!("the regional node {r} is not in the network"),
                        None => "the domicile is in no region".into(),
                    }
                );
            }
            println!(
                "{} percettori kept here, forwarded nowhere until their region joins",
                list.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        OutboxCommand::Retry { seq } => {
            let n = match open_for_reading(&config)? {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.outbox.riprova(seq))
                        .map_err(|e| e.to_string())?
                }
                Source::Gateway(addr) => {
                    let path = match seq {
                        Some(s) => format!("/admin/outbox/retry?seq={s}"),
                        None => "/admin/outbox/retry".into(),
                    };
                    admin_json(addr, "POST", &path, None)?["requeued"]
                        .as_u64()
                        .unwrap_or(0) as usize
                }
            };
            println!("{n} forward(s) queued again");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn eures(config: Config, c: EuresCommand) -> Result<ExitCode, String> {
    store_needed(&config)?;
    let EuresCommand::Export { dir } = c;
    let list: Vec<Forward> = match open_for_reading(&config)? {
        Source::Store(s) => {
            let (gw, rt) = offline(&config, s)?;
            rt.block_on(gw.api.eures()).map_err(|e| e.to_string())?
        }
        Source::Gateway(addr) => {
            serde_json::from_value(admin_json(addr, "GET", "/admin/eures", None)?)
                .map_err(|e| e.to_string())?
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for i in &list {
        let name = format!(
            "{}-{}-{}.xml",
            if i.kind == crate::modulo::Tipo::Candidatura {
                "europass-cv"
            } else {
                "vacancy"
            },
            i.codice,
            i.seq
        );
        let path = dir.join(name.replace(['/', '\\'], "_"));
        std::fs::write(&path, &i.corpo).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    println!(
        "{} EURES document(s) written to {}",
        list.len(),
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Rows sent per batch (one transaction each).
const LOTTO: usize = 5_000;

pub fn import(config: Config, c: ImportCommand) -> Result<ExitCode, String> {
    let ImportCommand::UltimiRapporti { file } = c;
    let f = std::fs::File::open(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        std::fs::create_dir_all(&config.data)
            .map_err(|e| format!("{}: {e}", config.data.display()))?;
    }
    let source = open_for_reading(&config)?;
    let offline = match source {
        Source::Store(s) => Some(offline(&config, s)?),
        Source::Gateway(_) => None,
    };
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{bar:40}] {bytes}/{total_bytes} ({eta}) {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let invia = |lotto: &[(String, Rapporto)]| -> Result<usize, String> {
        match (&offline, &source_addr(&config)) {
            (Some((gw, rt)), _) => rt
                .block_on(gw.api.importa_rapporti(lotto))
                .map_err(|e| e.to_string()),
            (None, Some(addr)) => {
                let body = serde_json::to_string(lotto).map_err(|e| e.to_string())?;
                Ok(
                    admin_json(*addr, "POST", "/admin/rapporti", Some(&body))?["stored"]
                        .as_u64()
                        .unwrap_or(0) as usize,
                )
            }
            (None, None) => Err("the store is in use and the gateway's address is unknown".into()),
        }
    };
    let mut lotto = Vec::with_capacity(LOTTO);
    let (mut lette, mut salvate, mut rifiutate) = (0usize, 0usize, Vec::new());
    let reader = std::io::BufReader::new(f);
    for (n, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("{}: line {}: {e}", file.display(), n + 1))?;
        bar.inc(line.len() as u64 + 1);
        if line.trim().is_empty() || (n == 0 && rapporto::intestazione(&line)) {
            continue;
        }
        lette += 1;
        match rapporto::riga(&line) {
            Ok(r) => lotto.push(r),
            Err(e) => rifiutate.push(format!("line {}: {e}", n + 1)),
        }
        if lotto.len() >= LOTTO {
            salvate += invia(&lotto)?;
            lotto.clear();
            bar.set_message(format!("{salvate} stored"));
        }
    }
    if !lotto.is_empty() {
        salvate += invia(&lotto)?;
    }
    bar.finish_and_clear();
    Ok(esito_import(
        &rifiutate,
        &format!("{lette} records read, {salvate} stored"),
        "a worker's later record wins over an earlier one",
    ))
}

/// The end of an import: the refused lines (the first 20), the counts, and the exit status
/// (0: all stored; 1: some lines refused).
pub(super) fn esito_import(rifiutate: &[String], conti: &str, nota: &str) -> ExitCode {
    for r in rifiutate.iter().take(20) {
        eprintln!("{r}");
    }
    if rifiutate.len() > 20 {
        eprintln!("… and {} more refused lines", rifiutate.len() - 20);
    }
    println!("{conti}, {} refused ({nota})", rifiutate.len());
    if rifiutate.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The running gateway's admin address, when it holds the store.
pub(super) fn source_addr(config: &Config) -> Option<std::net::SocketAddr> {
    std::fs::read_to_string(config.data.join(super::LISTEN_FILE))
        .ok()
        .and_then(|a| a.trim().parse().ok())
}

pub fn users(config: Config, c: UsersCommand) -> Result<ExitCode, String> {
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        std::fs::create_dir_all(&config.data)
            .map_err(|e| format!("{}: {e}", config.data.display()))?;
    }
    // The password is read before anything is changed.
    let password = match &c {
        UsersCommand::Add {
            password_stdin: true,
            ..
        } => {
            let mut riga = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut riga)
                .map_err(|e| format!("stdin: {e}"))?;
            Some(riga.trim_end_matches(['\r', '\n']).to_string())
        }
        _ => None,
    };
    match (c, open_for_reading(&config)?) {
        (
            UsersCommand::Add {
                nome,
                ruolo: Some(ruolo),
                ..
            },
            source,
        ) => {
            let scelta = password.is_none();
            let password = match source {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.api.aggiungi_operatore(&nome, ruolo, password.as_deref()))
                        .map_err(|e| e.to_string())?
                }
                Source::Gateway(addr) => {
                    let body =
                        serde_json::json!({ "nome": nome, "ruolo": ruolo, "password": password })
                            .to_string();
                    let v = admin_json(addr, "POST", "/admin/users", Some(&body))?;
                    v["password"].as_str().unwrap_or("").to_string()
                }
            };
            eprintln!(
                "console user {nome} added ({}): log in at http://<local listener>/console",
                ruolo.as_str()
            );
            if scelta {
                eprintln!("its password (shown only now):");
                println!("{password}");
            }
        }
        (UsersCommand::Add { nome, .. }, Source::Store(s)) => {
            let (gw, rt) = offline(&config, s)?;
            let token = rt
                .block_on(gw.api.aggiungi_utente(&nome))
                .map_err(|e| e.to_string())?;
            print_token(&nome, &token);
        }
        (UsersCommand::Add { nome, .. }, Source::Gateway(addr)) => {
            let body = serde_json::json!({ "nome": nome }).to_string();
            let v = admin_json(addr, "POST", "/admin/users", Some(&body))?;
            print_token(&nome, v["token"].as_str().unwrap_or(""));
        }
        (UsersCommand::List { json }, source) => {
            let list: Vec<serde_json::Value> = match source {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.api.utenti()).map_err(|e| e.to_string())?
                }
                .iter()
                .map(
                    |u| serde_json::json!({ "nome": u.nome, "creato": u.creato, "ruolo": u.ruolo }),
                )
                .collect(),
                Source::Gateway(addr) => {
                    serde_json::from_value(admin_json(addr, "GET", "/admin/users", None)?)
                        .map_err(|e| e.to_string())?
                }
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if list.is_empty() {
                println!("no users (pdd users add NAME)");
            } else {
                for u in &list {
                    println!(
                        "{:<32} {:<10} since {}",
                        u["nome"].as_str().unwrap_or(""),
                        u["ruolo"].as_str().unwrap_or("api"),
                        u["creato"].as_str().unwrap_or("")
                    );
                }
            }
        }
        (UsersCommand::Remove { nome }, Source::Store(s)) => {
            let (gw, rt) = offline(&config, s)?;
            if !rt
                .block_on(gw.api.rimuovi_utente(&nome))
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no user '{nome}'"));
            }
            println!("user {nome} removed");
        }
        (UsersCommand::Remove { nome }, Source::Gateway(addr)) => {
            admin_json(addr, "DELETE", &format!("/admin/users/{nome}"), None)?;
            println!("user {nome} removed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_token(nome: &str, token: &str) {
    eprintln!("user {nome} added; its token (shown only now):");
    println!("{token}");
    eprintln!("use it as: curl -H 'Authorization: Bearer {token}' http://…/api/candidature");
}
