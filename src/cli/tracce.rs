//! `pdd trace export` (CNIPA traces, `Tracciamento.xsd`) and `pdd diag list` (diagnostic
//! messages), on the store or, while a gateway holds it, through its admin endpoints.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};

use super::{admin_get, Source};
use crate::config::Config;
use crate::egov::traccia::{Omessa, TipoMessaggio, Traccia};
use crate::gateway::diagnostici::{self, Diagnostico, Filtro, Severita};
use crate::gateway::tracce;
use crate::store::Exchange;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatoTracce {
    /// One `traccia` document (Tracciamento.xsd) per trace.
    Cnipa,
    /// A JSON array of traces.
    Json,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scelta").required(true).args(["id", "since"])))]
pub struct ExportArgs {
    /// One exchange: an Identificatore (of its request or response) or a sequence number.
    #[arg(conflicts_with_all = ["since", "until"])]
    pub id: Option<String>,
    /// The exchanges received from DATE on: RFC 3339 (`2026-11-27T08:00:00+01:00`), a local
    /// time (`2026-11-27T08:00[:00]`) or a day (`2026-11-27`, from its start).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// And before DATE (a day: up to its end).
    #[arg(long, value_name = "DATE", requires = "since")]
    pub until: Option<String>,
    /// `cnipa`: XML documents valid against Tracciamento.xsd, one per trace, each with its XML
    /// declaration (the schema has no element for a list of traces); `json`: an array.
    #[arg(long, value_enum, default_value_t = FormatoTracce::Cnipa)]
    pub format: FormatoTracce,
    /// Write to FILE instead of stdout; to an existing directory, one file per trace
    /// (`SEQ-richiesta.xml`, `SEQ-risposta.xml`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum DiagCommand {
    /// Diagnostic messages, oldest first: time, severity, function, code, exchange, message.
    List {
        /// From DATE on (RFC 3339, a local time or a day).
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Before DATE (a day: up to its end).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Only this severity and the more severe ones: fatal (0), errorProtocol (1),
        /// errorIntegration (2), infoProtocol (3), infoIntegration (4), debugLow (5),
        /// debugMedium (6), debugHigh (7).
        #[arg(long, value_name = "LEVEL", value_parser = parse_severita)]
        severity: Option<Severita>,
        /// At most the last N.
        #[arg(long, short = 'n', default_value_t = 1000)]
        limit: usize,
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
}

fn parse_severita(s: &str) -> Result<Severita, String> {
    Severita::parse(s).ok_or_else(|| {
        format!("'{s}': use fatal, errorProtocol, errorIntegration, infoProtocol, infoIntegration, debugLow, debugMedium, debugHigh or 0-7")
    })
}

/// A DATE of `--since`/`--until` as ms since the epoch: RFC 3339, a local time
/// (`yyyy-MM-ddTHH:mm[:ss[.fff]]`, `T` or a space), or a day `yyyy-MM-dd` (its start; with
/// `fine_giorno`, the start of the next day, so that `--until` a day covers it).
pub fn istante(s: &str, fine_giorno: bool) -> Result<i64, String> {
    let t = super::istante(s)?;
    let giorno = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").is_ok();
    Ok(if giorno && fine_giorno {
        super::istante(
            &t.date_naive()
                .succ_opt()
                .ok_or("date out of range")?
                .to_string(),
        )?
        .timestamp_millis()
    } else {
        t.timestamp_millis()
    })
}

/// One exchange with its raw messages.
fn scambio(source: &Source, id: &str) -> Result<Option<Exchange>, String> {
    match source {
        Source::Store(s) => super::esegui(async {
            match s.exchange_by_id(id).await? {
                Some(e) => Ok(Some(e)),
                None => match id.parse::<u64>() {
                    Ok(seq) => s.exchange(seq).await,
                    Err(_) => Ok(None),
                },
            }
        })?
        .map_err(|e: crate::store::StoreError| e.to_string()),
        Source::Gateway(a) => {
            let path = format!(
                "/admin/exchanges/{}",
                id.replace('%', "%25").replace(' ', "%20")
            );
            Ok(admin_get(*a, &path)?.and_then(|v| Exchange::from_json_full(&v)))
        }
    }
}

/// The sequence numbers of the exchanges received in `[dal, al)`, oldest first.
fn nel_periodo(source: &Source, dal: i64, al: Option<i64>) -> Result<Vec<u64>, String> {
    let list: Vec<Exchange> = match source {
        Source::Store(s) => {
            super::esegui(s.exchanges_between(Some(dal), al))?.map_err(|e| e.to_string())?
        }
        Source::Gateway(a) => {
            let mut path = format!("/admin/exchanges?since={dal}");
            if let Some(al) = al {
                path.push_str(&format!("&until={al}"));
            }
            let v = admin_get(*a, &path)?.unwrap_or_default();
            serde_json::from_value(v).map_err(|e| format!("answer from the gateway: {e}"))?
        }
    };
    Ok(list.into_iter().map(|e| e.seq).collect())
}

/// Where the traces go.
enum Uscita {
    Flusso(Box<dyn Write>),
    Cartella(PathBuf),
}

struct Scrittore {
    uscita: Uscita,
    formato: FormatoTracce,
    scritte: usize,
}

impl Scrittore {
    fn new(args: &ExportArgs) -> Result<Scrittore, String> {
        let uscita = match &args.out {
            Some(p) if p.is_dir() => Uscita::Cartella(p.clone()),
            Some(p) => Uscita::Flusso(Box::new(std::io::BufWriter::new(
                std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?,
            ))),
            None => Uscita::Flusso(Box::new(std::io::BufWriter::new(std::io::stdout()))),
        };
        Ok(Scrittore {
            uscita,
            formato: args.format,
            scritte: 0,
        })
    }

    fn scrivi(&mut self, t: &Traccia) -> Result<(), String> {
        let testo = match self.formato {
            FormatoTracce::Cnipa => tracce::documento(t),
            FormatoTracce::Json => {
                serde_json::to_string_pretty(&tracce::json(t)).unwrap_or_default()
            }
        };
        match &mut self.uscita {
            Uscita::Cartella(dir) => {
                let nome = format!(
                    "{:06}-{}.{}",
                    t.seq,
                    match t.tipo_messaggio {
                        TipoMessaggio::Richiesta => "richiesta",
                        TipoMessaggio::Risposta => "risposta",
                    },
                    match self.formato {
                        FormatoTracce::Cnipa => "xml",
                        FormatoTracce::Json => "json",
                    }
                );
                let p = dir.join(nome);
                std::fs::write(&p, testo).map_err(|e| format!("{}: {e}", p.display()))?;
            }
            Uscita::Flusso(w) => {
                let r = match self.formato {
                    FormatoTracce::Cnipa => w.write_all(testo.as_bytes()),
                    FormatoTracce::Json => {
                        let sep = if self.scritte == 0 { "[\n" } else { ",\n" };
                        w.write_all(sep.as_bytes())
                            .and_then(|_| w.write_all(testo.as_bytes()))
                    }
                };
                r.map_err(|e| e.to_string())?;
            }
        }
        self.scritte += 1;
        Ok(())
    }

    fn chiudi(mut self) -> Result<usize, String> {
        if let Uscita::Flusso(w) = &mut self.uscita {
            if self.formato == FormatoTracce::Json {
                let fine = if self.scritte == 0 { "[]\n" } else { "\n]\n" };
                w.write_all(fine.as_bytes()).map_err(|e| e.to_string())?;
            }
            w.flush().map_err(|e| e.to_string())?;
        }
        Ok(self.scritte)
    }
}

fn nota(o: &Omessa) {
    eprintln!(
        "pdd: exchange {}: no {} trace ({})",
        o.seq,
        o.tipo_messaggio.as_str().to_lowercase(),
        o.motivo
    );
}

/// `pdd trace export`.
pub fn export(config: &Config, source: &Source, args: ExportArgs) -> Result<ExitCode, String> {
    let registry = config.build_registry().map_err(|e| e.to_string())?;
    let limits = crate::xml::Limits {
        max_depth: config.limits.max_xml_depth,
        ..crate::xml::Limits::default()
    };
    let traccia =
        |ex: &Exchange| tracce::tracce(ex, &tracce::porta_locale(config, &registry, ex), limits);
    if let Some(id) = &args.id {
        let Some(ex) = scambio(source, id)? else {
            eprintln!("pdd: no exchange with id or sequence '{id}'");
            return Ok(ExitCode::from(1));
        };
        let (fatte, omesse) = traccia(&ex);
        omesse.iter().for_each(nota);
        if fatte.is_empty() {
            eprintln!("pdd: exchange {} has no busta to trace", ex.seq);
            return Ok(ExitCode::from(1));
        }
        let mut w = Scrittore::new(&args)?;
        for t in &fatte {
            w.scrivi(t)?;
        }
        w.chiudi()?;
        return Ok(ExitCode::SUCCESS);
    }
    let dal = istante(args.since.as_deref().unwrap_or_default(), false)?;
    let al = args
        .until
        .as_deref()
        .map(|u| istante(u, true))
        .transpose()?;
    let seqs = nel_periodo(source, dal, al)?;
    let mut w = Scrittore::new(&args)?;
    for seq in &seqs {
        // Gone meanwhile (retention): nothing to trace.
        let Some(ex) = scambio(source, &seq.to_string())? else {
            continue;
        };
        let (fatte, omesse) = traccia(&ex);
        omesse.iter().for_each(nota);
        for t in &fatte {
            w.scrivi(t)?;
        }
    }
    let n = w.chiudi()?;
    if args.out.is_some() || seqs.is_empty() {
        eprintln!("pdd: {n} traces from {} exchanges", seqs.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `pdd diag`.
pub fn diag(config: &Config, c: DiagCommand) -> Result<ExitCode, String> {
    let DiagCommand::List {
        since,
        until,
        severity,
        limit,
        json,
    } = c;
    if config.store.engine == crate::config::Engine::Sled && !config.data.exists() {
        return Err(format!("no store at {}", config.data.display()));
    }
    let f = Filtro {
        dal: since.as_deref().map(|s| istante(s, false)).transpose()?,
        al: until.as_deref().map(|s| istante(s, true)).transpose()?,
        soglia: severity,
        limite: Some(limit),
    };
    let list: Vec<Diagnostico> = match super::open_for_reading(config)? {
        Source::Store(s) => {
            super::esegui(diagnostici::elenca(s.as_ref(), &f))?.map_err(|e| e.to_string())?
        }
        Source::Gateway(a) => {
            let mut q = vec![format!("limit={limit}")];
            if let Some(d) = f.dal {
                q.push(format!("since={d}"));
            }
            if let Some(d) = f.al {
                q.push(format!("until={d}"));
            }
            if let Some(s) = f.soglia {
                q.push(format!("severity={}", s.livello()));
            }
            let v =
                admin_get(a, &format!("/admin/diagnostici?{}", q.join("&")))?.unwrap_or_default();
            serde_json::from_value(v).map_err(|e| format!("answer from the gateway: {e}"))?
        }
    };
    if json {
        let v: Vec<serde_json::Value> = list.iter().map(Diagnostico::json).collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<29}  {:<19}  {:<19}  {:<22}  {:>6}  MESSAGE",
        "TIME", "SEVERITY", "FUNCTION", "CODE", "SEQ"
    );
    for d in &list {
        println!(
            "{:<29}  {:<19}  {:<19}  {:<22}  {:>6}  {}{}",
            crate::clock::ora::testo(&d.ora),
            format!("{} ({})", d.severita, d.severita.livello()),
            d.funzione,
            d.codice,
            d.seq.map_or("-".to_string(), |s| s.to_string()),
            d.messaggio,
            d.id.as_deref()
                .map(|i| format!(" [{i}]"))
                .unwrap_or_default()
        );
    }
    if list.is_empty() {
        println!("(no diagnostics)");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_since_and_until() {
        assert_eq!(
            istante("2026-11-27T08:00:00+01:00", false).unwrap(),
            istante("2026-11-27T07:00:00Z", true).unwrap()
        );
        let giorno = istante("2026-11-27", false).unwrap();
        assert_eq!(istante("2026-11-27", true).unwrap() - giorno, 86_400_000);
        assert_eq!(istante("2026-11-27T00:00", false).unwrap(), giorno);
        assert_eq!(istante("2026-11-27 00:00:00.000", false).unwrap(), giorno);
        assert_eq!(
            istante("2026-11-27T00:00:01", false).unwrap(),
            giorno + 1000
        );
        assert!(istante("27/11/2026", false).is_err());
        assert!(istante("", false).is_err());
    }
}
