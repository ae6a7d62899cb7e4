//! `pdd intermediari`: the register of the intermediaries accredited with this node, from which
//! it fills and checks the DatiSistema of the moduli its local systems publish. Works on the
//! store directly, or through the running gateway's loopback admin endpoints.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::rete::{admin_json, offline};
use super::{open_for_reading, Source};
use crate::config::Config;
use crate::modulo::intermediario::{Intermediario, Intestazione};

#[derive(Subcommand, Debug)]
pub enum IntermediariCommand {
    /// Add (or replace, by codice fiscale) intermediaries from a CSV file whose header names
    /// its columns, in any order: codice_fiscale, denominazione, tipo (cpi, agenzia,
    /// ente-bilaterale, universita, autorizzato) are required; codice, indirizzo, comune
    /// (Belfiore code), cap, telefono, fax, email may follow. Exit 0: all imported; 1: some
    /// lines refused (the others are imported); 2: unreadable file or header.
    Import { file: PathBuf },
    /// The register.
    List {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// One intermediary, by codice fiscale (exit 1 if not in the register).
    Show {
        codice_fiscale: String,
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Remove an intermediary: its moduli are refused from now on.
    Remove { codice_fiscale: String },
}

/// The register: from the store, or from the running gateway.
fn leggi(config: &Config) -> Result<Vec<Intermediario>, String> {
    match open_for_reading(config)? {
        Source::Store(s) => {
            let (gw, rt) = offline(config, s)?;
            rt.block_on(gw.api.intermediari())
                .map_err(|e| e.to_string())
        }
        Source::Gateway(addr) => {
            serde_json::from_value(admin_json(addr, "GET", "/admin/intermediari", None)?)
                .map_err(|e| e.to_string())
        }
    }
}

fn scheda(i: &Intermediario) -> String {
    let mut s = format!(
        "{}  {}\n  tipo: {}\n",
        i.codice_fiscale,
        i.denominazione,
        i.tipo.as_str()
    );
    for (nome, v) in [
        ("codice", &i.codice),
        ("indirizzo", &i.indirizzo),
        ("comune", &i.comune),
        ("cap", &i.cap),
        ("telefono", &i.telefono),
        ("fax", &i.fax),
        ("email", &i.email),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("  {nome}: {v}\n"));
        }
    }
    s
}

pub fn intermediari(config: Config, c: IntermediariCommand) -> Result<ExitCode, String> {
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        std::fs::create_dir_all(&config.data)
            .map_err(|e| format!("{}: {e}", config.data.display()))?;
    }
    match c {
        IntermediariCommand::Import { file } => import(&config, &file),
        IntermediariCommand::List { json } => {
            let list = leggi(&config)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
            } else if list.is_empty() {
                println!(
                    "the register is empty: intermediaries are not checked (pdd intermediari import FILE.csv)"
                );
            } else {
                for i in &list {
                    println!(
                        "{:<16}  {:<15}  {}",
                        i.codice_fiscale,
                        i.tipo.as_str(),
                        i.denominazione
                    );
                }
                println!("{} intermediaries", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        IntermediariCommand::Show {
            codice_fiscale,
            json,
        } => {
            let cf = codice_fiscale.trim().to_ascii_uppercase();
            let trovato = match open_for_reading(&config)? {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    rt.block_on(gw.api.intermediario(&cf))
                        .map_err(|e| e.to_string())?
                }
                Source::Gateway(addr) => {
                    match super::admin_request(
                        addr,
                        "GET",
                        &format!("/admin/intermediari/{cf}"),
                        None,
                    )? {
                        (404, _) => None,
                        (200, body) => {
                            Some(serde_json::from_str(&body).map_err(|e| e.to_string())?)
                        }
                        (status, body) => {
                            return Err(format!("the gateway answered HTTP {status}: {body}"))
                        }
                    }
                }
            };
            let Some(i) = trovato else {
                eprintln!("{cf} is not in the register of intermediaries");
                return Ok(ExitCode::from(1));
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&i).unwrap_or_default());
            } else {
                print!("{}", scheda(&i));
            }
            Ok(ExitCode::SUCCESS)
        }
        IntermediariCommand::Remove { codice_fiscale } => {
            let cf = codice_fiscale.trim().to_ascii_uppercase();
            match open_for_reading(&config)? {
                Source::Store(s) => {
                    let (gw, rt) = offline(&config, s)?;
                    if !rt
                        .block_on(gw.api.rimuovi_intermediario(&cf))
                        .map_err(|e| e.to_string())?
                    {
                        return Err(format!("{cf} is not in the register of intermediaries"));
                    }
                }
                Source::Gateway(addr) => {
                    admin_json(addr, "DELETE", &format!("/admin/intermediari/{cf}"), None)?;
                }
            }
            println!("intermediary {cf} removed from the register");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import(config: &Config, file: &PathBuf) -> Result<ExitCode, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut lines = std::io::BufReader::new(f).lines();
    let header = lines
        .next()
        .ok_or_else(|| format!("{}: empty file (a header line is needed)", file.display()))?
        .map_err(|e| format!("{}: line 1: {e}", file.display()))?;
    let h = Intestazione::leggi(&header).map_err(|e| format!("{}: {e}", file.display()))?;
    let (mut righe, mut rifiutate, mut lette) = (Vec::new(), Vec::new(), 0usize);
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| format!("{}: line {}: {e}", file.display(), n + 2))?;
        if line.trim().is_empty() {
            continue;
        }
        lette += 1;
        match h.riga(&line) {
            Ok(i) => righe.push(i),
            Err(e) => rifiutate.push(format!("line {}: {e}", n + 2)),
        }
    }
    let salvate = match open_for_reading(config)? {
        Source::Store(s) => {
            let (gw, rt) = offline(config, s)?;
            rt.block_on(gw.api.importa_intermediari(&righe))
                .map_err(|e| e.to_string())?
        }
        Source::Gateway(addr) => {
            let body = serde_json::to_string(&righe).map_err(|e| e.to_string())?;
            admin_json(addr, "POST", "/admin/intermediari", Some(&body))?["stored"]
                .as_u64()
                .unwrap_or(0) as usize
        }
    };
    Ok(super::rete::esito_import(
        &rifiutate,
        &format!("{lette} intermediaries read, {salvate} stored"),
        "a codice fiscale already in the register is replaced",
    ))
}
