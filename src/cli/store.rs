//! `pdd store`: backup, restore, stats, check, purge. Each works on the store directly, or
//! through the running gateway's loopback admin endpoints (`/admin/store/…`) while the gateway
//! holds the store; restore only ever works on a store no gateway holds. What a backup
//! guarantees is in [`crate::store::care`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::{admin_request_within, esegui, open_for_reading, Source, LISTEN_FILE};
use crate::config::Config;
use crate::store::care::{CheckReport, Manifest, PurgeReport, Stats, MANIFEST};
use crate::store::{SledStore, Store, StoreError};

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy the store into DIR, a new store `pdd --data DIR` opens as it is, with a
    /// manifest.json. Works while the gateway runs: every exchange acknowledged before the
    /// backup began is in it, with its raw messages, its duplicate-filter entry and the
    /// moduli and outbox state it caused.
    Backup {
        /// A directory that does not exist yet (or is empty).
        dir: PathBuf,
    },
    /// Replace the configured store with a backup. Refused while a gateway holds the store, and
    /// when the store exists unless --force (which moves it aside, never deletes it). The
    /// backup is copied, opened and checked before the switch; the backup itself is left as
    /// it is.
    Restore {
        /// A directory written by `pdd store backup`.
        dir: PathBuf,
        /// Replace an existing store (moved to `<data>.replaced-<time>`).
        #[arg(long)]
        force: bool,
    },
    /// Entries and bytes per tree, and the size on disk.
    Stats {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Read back every record: exchanges and all their raw pieces, the ids index, the duplicate
    /// filter, moduli and their summaries, outbox, partners, counters (exit 0: whole;
    /// 1: problems, listed; 2: the store cannot be opened).
    Check {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// Copy a store into another engine's: a node's sled store into the cluster's PostgreSQL
    /// database (`--from sled:DIR --to postgres:URL`). Everything moves: exchanges with their
    /// raw messages, the duplicate filter, Identificatore counters, moduli, the outbox, EURES
    /// documents, contacts, users, rapporti, intermediaries, diagnostics, partners; then the copy is checked
    /// (records per kind counted on both sides, a sample of exchanges and moduli compared).
    /// The source is only read (stop its gateway first); the target must hold no exchange.
    /// Exit 0: copied and checked; 1: the check found a difference.
    Copy {
        /// `sled:DIR`.
        #[arg(long)]
        from: String,
        /// `postgres:URL` (`postgres:postgres://user@host/db`).
        #[arg(long)]
        to: String,
        /// Records per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// Bring the database's schema up to date (the "postgres" engine; `serve` does it too at
    /// start, under a lock, so nodes starting together apply each migration once).
    Migrate,
    /// Purge now what is past retention (`[store] retention_days`, `duplicate_window_days`);
    /// moduli, outbox entries and partners are never purged.
    Purge {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
}

pub fn store(config: Config, c: StoreCommand) -> Result<ExitCode, String> {
    let pg = crate::cli::pg_options(&config)?;
    match (&c, &pg) {
        (StoreCommand::Restore { .. }, Some(_)) => {
            return Err(
                "a PostgreSQL store is restored with pg_restore (see docs/cluster.md), not by pdd"
                    .into(),
            )
        }
        (StoreCommand::Backup { .. }, Some(_)) => {
            return Err(
                "a PostgreSQL store is backed up with pg_dump (see docs/cluster.md), not by pdd"
                    .into(),
            )
        }
        (StoreCommand::Migrate, None) => {
            println!("the sled store needs no migration: it brings itself up to date when opened");
            return Ok(ExitCode::SUCCESS);
        }
        (StoreCommand::Migrate, Some(o)) => {
            let (applicate, versione) = crate::cli::esegui(async {
                let s = crate::store::PgStore::connect(o)?;
                let a = s.migrate().await?;
                Ok::<_, crate::store::StoreError>((a, s.schema_version().await?))
            })?
            .map_err(|e| e.to_string())?;
            if applicate.is_empty() {
                println!("schema at version {versione}: up to date");
            } else {
                println!("applied {applicate:?}: schema at version {versione}");
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => {}
    }
    if let StoreCommand::Copy { from, to, batch } = &c {
        return copy(from, to, *batch);
    }
    match c {
        StoreCommand::Copy { .. } => Ok(ExitCode::SUCCESS),
        StoreCommand::Restore { dir, force } => restore(&config, &dir, force),
        StoreCommand::Backup { dir } => backup(&config, &dir),
        StoreCommand::Migrate => Ok(ExitCode::SUCCESS),
        StoreCommand::Stats { json } => stats(&config, json),
        StoreCommand::Check { json } => check(&config, json),
        StoreCommand::Purge { json } => purge(&config, json),
    }
}

/// The store, or the gateway holding it; never creates a store.
fn sorgente(config: &Config) -> Result<Source, String> {
    if config.store.engine == crate::config::Engine::Sled && !config.data.join("db").exists() {
        return Err(format!("no store at {}", config.data.display()));
    }
    open_for_reading(config)
}

/// A request to the gateway's admin endpoint, waiting as long as the operation takes.
fn chiedi(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<serde_json::Value, String> {
    let (status, body) = admin_request_within(addr, method, path, body, None)?;
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| format!("the gateway answered HTTP {status}: {}", body.trim()))?;
    if status != 200 {
        return Err(format!(
            "the gateway answered HTTP {status}: {}",
            v["error"].as_str().unwrap_or(body.trim())
        ));
    }
    Ok(v)
}

fn da_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("answer from the gateway: {e}"))
}

fn stampa_json<T: serde::Serialize>(v: &T) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `1.5 MiB`.
fn misura(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = n as f64;
    let mut i = 0;
    while x >= 1024.0 && i + 1 < U.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{x:.1} {}", U[i])
    }
}

/// An absolute path for `p` (the gateway's working directory is not ours), its last component
/// not resolved.
fn assoluto(p: &Path) -> Result<PathBuf, String> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_err(|e| e.to_string())?.join(p)
    };
    let nome = p
        .file_name()
        .ok_or_else(|| format!("{}: name a directory", p.display()))?;
    let genitore = p.parent().unwrap_or(Path::new("/"));
    let genitore = genitore.canonicalize().unwrap_or(genitore.to_path_buf());
    Ok(genitore.join(nome))
}

fn dentro(p: &Path, dir: &Path) -> bool {
    dir.canonicalize().is_ok_and(|d| p.starts_with(d))
}

fn vuota_o_assente(p: &Path) -> bool {
    !p.exists() || std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

fn backup(config: &Config, dir: &Path) -> Result<ExitCode, String> {
    let dir = assoluto(dir)?;
    if !vuota_o_assente(&dir) {
        return Err(format!(
            "{} exists and is not empty: a backup goes into a new directory",
            dir.display()
        ));
    }
    if dentro(&dir, &config.data) {
        return Err(format!(
            "{} is inside the store {}",
            dir.display(),
            config.data.display()
        ));
    }
    let t = std::time::Instant::now();
    let m: Manifest = match sorgente(config)? {
        Source::Store(s) => {
            esegui(s.backup(&dir, &crate::clock::SystemClock))?.map_err(|e| e.to_string())?
        }
        Source::Gateway(addr) => {
            let body = serde_json::json!({ "dir": dir }).to_string();
            da_json(chiedi(addr, "POST", "/admin/store/backup", Some(&body))?)?
        }
    };
    let conta = |t: &str| m.trees.get(t).copied().unwrap_or(0);
    println!(
        "backup of {} in {}: {} exchanges ({} raw pieces), {} ids in the duplicate filter, {} moduli, {} forwards in the outbox, {} partners; {} on disk, {:.1} s",
        m.source,
        dir.display(),
        conta("exchanges"),
        conta("raw"),
        conta("dup"),
        conta("moduli"),
        conta("outbox"),
        conta("partners"),
        misura(m.bytes_on_disk),
        t.elapsed().as_secs_f64()
    );
    if m.skipped_in_flight > 0 {
        println!(
            "{} exchanges in flight during the copy left out (their senders retry them)",
            m.skipped_in_flight
        );
    }
    println!("restore it with: pdd store restore {}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn stats(config: &Config, json: bool) -> Result<ExitCode, String> {
    let s: Stats = match sorgente(config)? {
        Source::Store(s) => esegui(s.stats())?.map_err(|e| e.to_string())?,
        Source::Gateway(addr) => da_json(chiedi(addr, "GET", "/admin/store/stats", None)?)?,
    };
    if json {
        stampa_json(&s);
        return Ok(ExitCode::SUCCESS);
    }
    println!("store {}", s.path);
    println!(
        "{:<16} {:>10} {:>12} {:>12}",
        "TREE", "ENTRIES", "KEYS", "VALUES"
    );
    for t in &s.trees {
        println!(
            "{:<16} {:>10} {:>12} {:>12}",
            t.name,
            t.entries,
            misura(t.key_bytes),
            misura(t.value_bytes)
        );
    }
    if s.log_segments > 0 {
        println!(
            "log: {} in {} segments (registro/: the exchanges' records and the moduli)",
            misura(s.log_bytes),
            s.log_segments
        );
    }
    println!(
        "on disk: {} in the directory ({} by sled's count)",
        misura(s.bytes_in_directory),
        misura(s.size_on_disk)
    );
    Ok(ExitCode::SUCCESS)
}

fn check(config: &Config, json: bool) -> Result<ExitCode, String> {
    let esito = sorgente(config).and_then(|src| match src {
        Source::Store(s) => esegui(s.check())?.map_err(|e| e.to_string()),
        Source::Gateway(addr) => da_json(chiedi(addr, "GET", "/admin/store/check", None)?),
    });
    let r: CheckReport = match esito {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pdd: cannot check the store {}: {e}", config.data.display());
            return Ok(ExitCode::from(2));
        }
    };
    if json {
        stampa_json(&r);
    } else {
        let conti = r
            .counts
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "store {}: read {conti} in {} ms",
            config.data.display(),
            r.millis
        );
        for p in &r.problems {
            println!("problem: {p}");
        }
        if r.problems_total > r.problems.len() as u64 {
            println!(
                "… and {} more problems",
                r.problems_total - r.problems.len() as u64
            );
        }
        if r.ok() {
            println!("ok");
        } else {
            println!("{} problems", r.problems_total);
        }
    }
    Ok(if r.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn purge(config: &Config, json: bool) -> Result<ExitCode, String> {
    let r: PurgeReport = match sorgente(config)? {
        Source::Store(s) => {
            let l = crate::gateway::care::limiti(config, chrono::Local::now().fixed_offset());
            esegui(async {
                let r = s.purge(&l).await?;
                s.flush().await?;
                Ok::<_, StoreError>(r)
            })?
            .map_err(|e| e.to_string())?
        }
        Source::Gateway(addr) => da_json(chiedi(addr, "POST", "/admin/store/purge", None)?)?,
    };
    if json {
        stampa_json(&r);
    } else {
        println!(
            "purged {} exchanges ({} raw pieces, {} ids index entries), {} duplicate-filter entries, {} diagnostics, {} pieces of rewritten moduli and {} segments of the log (retention_days {}, duplicate_window_days {})",
            r.exchanges,
            r.raw_pieces,
            r.ids,
            r.dup,
            r.diagnostici,
            r.moduli_pieces,
            r.log_segments,
            config.store.retention_days,
            config.store.duplicate_window_days
        );
        if let Some(s) = &r.stopped {
            println!("stopped at an unreadable record ({s}): see pdd store check");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a gateway answers at the address recorded in the data directory.
fn gateway_vivo(data: &Path) -> Option<SocketAddr> {
    use std::io::{Read, Write};
    let addr: SocketAddr = std::fs::read_to_string(data.join(LISTEN_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = [0u8; 12];
    let n = s.read(&mut buf).ok()?;
    buf[..n].starts_with(b"HTTP/").then_some(addr)
}

fn bloccato(e: &StoreError) -> bool {
    matches!(e, StoreError::Locked { .. })
}

/// Copies a directory tree, every file synced; `listen.addr` and the manifest are left behind
/// (a store is not a backup).
fn copia_dir(da: &Path, a: &Path) -> std::io::Result<u64> {
    std::fs::create_dir_all(a)?;
    let mut n = 0;
    for e in std::fs::read_dir(da)? {
        let e = e?;
        let (src, dst) = (e.path(), a.join(e.file_name()));
        if e.file_type()?.is_dir() {
            n += copia_dir(&src, &dst)?;
        } else if e.file_name() != LISTEN_FILE && e.file_name() != MANIFEST {
            n += std::fs::copy(&src, &dst)?;
            std::fs::File::open(&dst)?.sync_all()?;
        }
    }
    std::fs::File::open(a)?.sync_all()?;
    Ok(n)
}

fn restore(config: &Config, dir: &Path, force: bool) -> Result<ExitCode, String> {
    let target = assoluto(&config.data)?;
    let dir = assoluto(dir)?;
    let manifest: Manifest = std::fs::read(dir.join(MANIFEST))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            format!(
                "{} is not a finished pdd backup (no readable {MANIFEST})",
                dir.display()
            )
        })?;
    if dentro(&target, &dir) || dentro(&dir, &target) {
        return Err(format!(
            "the backup {} and the store {} overlap",
            dir.display(),
            target.display()
        ));
    }
    // A live store is never replaced.
    if let Some(addr) = gateway_vivo(&target) {
        return Err(format!(
            "a gateway answers at {addr} for the store {}: stop it first",
            target.display()
        ));
    }
    let vecchio = if target.exists() && !vuota_o_assente(&target) {
        match SledStore::open(&target) {
            Err(e) if bloccato(&e) => {
                return Err(format!(
                    "the store {} is held by a running pdd: stop it first",
                    target.display()
                ))
            }
            _ if !force => {
                return Err(format!(
                    "{} exists: --force replaces it (it is moved aside, not deleted)",
                    target.display()
                ))
            }
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!(
                    "pdd: the store being replaced does not open ({e}): its Identificatore counters cannot be carried over"
                );
                None
            }
        }
    } else {
        None
    };
    let ts = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    let nome = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pdd-data".into());
    let accanto = |suffisso: &str| target.with_file_name(format!("{nome}.{suffisso}-{ts}"));
    // Staged beside the target (same file system, so the switch is a rename), opened and
    // checked there; the backup itself is not touched.
    let staging = accanto("restoring");
    let prepara = || -> Result<Option<usize>, String> {
        copia_dir(&dir, &staging).map_err(|e| format!("copying {}: {e}", dir.display()))?;
        let s = SledStore::open_waiting(&staging, Duration::from_secs(5))
            .map_err(|e| format!("the backup does not open: {e}"))?;
        let riepilogo =
            esegui(s.summary())?.map_err(|e| format!("the backup fails the start check: {e}"))?;
        let r = esegui(s.check())?.map_err(|e| e.to_string())?;
        if !r.ok() {
            return Err(format!(
                "the backup fails the check ({} problems):\n  {}",
                r.problems_total,
                r.problems.join("\n  ")
            ));
        }
        eprintln!("backup checked: {riepilogo}");
        vecchio
            .as_ref()
            .map(|v| s.eredita_da(v))
            .transpose()
            .map_err(|e| format!("carrying over the counters: {e}"))
    };
    let ereditati = match prepara() {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(format!("restore refused, nothing changed: {e}"));
        }
    };
    drop(vecchio);
    // The switch: the old store aside, the staged one in its place.
    if vuota_o_assente(&target) {
        let _ = std::fs::remove_dir(&target);
    }
    let messo_da_parte = if target.exists() {
        let aside = accanto("replaced");
        std::fs::rename(&target, &aside)
            .map_err(|e| format!("cannot move {} aside: {e}", target.display()))?;
        Some(aside)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(&staging, &target) {
        if let Some(aside) = &messo_da_parte {
            let _ = std::fs::rename(aside, &target);
        }
        return Err(format!(
            "cannot move {} to {}: {e} (the store is as it was)",
            staging.display(),
            target.display()
        ));
    }
    println!(
        "restored {} (backup of {} taken {} … {}, {} exchanges) into {}",
        dir.display(),
        manifest.source,
        manifest.started,
        manifest.finished,
        manifest.trees.get("exchanges").copied().unwrap_or(0),
        target.display()
    );
    if let Some(aside) = &messo_da_parte {
        println!("the store it replaces is kept in {}", aside.display());
    }
    match ereditati {
        Some(n) => {
            println!("Identificatore counters carried over from the replaced store: {n} raised")
        }
        None => {
            // The lost store may have issued Identificatori after the backup, in this very
            // minute at the latest: counters are per minute, so ours start clean in the next.
            let now = chrono::Local::now();
            let attesa = 60 - u64::from(chrono::Timelike::second(&now)) + 1;
            println!(
                "no store to carry Identificatore counters over from: waiting {attesa} s for the next minute, so that no Identificatore issued after the backup is issued again"
            );
            std::thread::sleep(Duration::from_secs(attesa));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A store named on the command line: `sled:DIR` or `postgres:URL`.
fn apri_nominato(nome: &str, deve_esistere: bool) -> Result<std::sync::Arc<dyn Store>, String> {
    if let Some(dir) = nome.strip_prefix("sled:") {
        let dir = Path::new(dir);
        if deve_esistere && !dir.join("db").exists() {
            return Err(format!("no sled store at {}", dir.display()));
        }
        return match SledStore::open(dir) {
            Ok(s) => Ok(std::sync::Arc::new(s)),
            Err(StoreError::Locked { .. }) => Err(format!(
                "{} is in use by a running pdd: stop it first (a copy reads a store nobody writes)",
                dir.display()
            )),
            Err(e) => Err(e.to_string()),
        };
    }
    if let Some(url) = nome.strip_prefix("postgres:") {
        let o = crate::store::PgOptions::new(url);
        return esegui(crate::store::PgStore::open(&o))?
            .map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn Store>)
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "'{nome}': name a store as sled:DIR or postgres:URL"
    ))
}

/// Records per kind, as an export hands them out.
fn conta(
    s: &std::sync::Arc<dyn Store>,
) -> Result<std::collections::BTreeMap<&'static str, u64>, String> {
    let conti = std::sync::Mutex::new(std::collections::BTreeMap::new());
    esegui(s.export(&|r| {
        *conti
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(r.kind())
            .or_insert(0u64) += 1;
        true
    }))?
    .map_err(|e| e.to_string())?;
    Ok(conti.into_inner().unwrap_or_else(|e| e.into_inner()))
}

fn copy(from: &str, to: &str, batch: usize) -> Result<ExitCode, String> {
    let src = apri_nominato(from, true)?;
    let dst = apri_nominato(to, false)?;
    if src.engine() == dst.engine() {
        return Err(format!(
            "both stores are {}: copy moves a store to another engine (for sled, pdd store backup)",
            src.engine()
        ));
    }
    let vuoto =
        esegui(async { dst.recent(1).await.map(|v| v.is_empty()) })?.map_err(|e| e.to_string())?;
    if !vuoto {
        return Err(format!(
            "{to} already holds exchanges: copy into an empty store"
        ));
    }
    // The export runs on its own thread and hands records over a bounded channel: memory
    // holds a few batches, whatever the store's size.
    let (tx, rx) = std::sync::mpsc::sync_channel::<crate::store::Record>(batch.max(1) * 2);
    let esportatore = {
        let src = src.clone();
        std::thread::spawn(move || -> Result<(), String> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(src.export(&|r| tx.send(r).is_ok()))
                .map_err(|e| e.to_string())
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut copiati = 0u64;
    let mut buf = Vec::with_capacity(batch.max(1));
    let mut errore = None;
    for r in rx.iter() {
        buf.push(r);
        if buf.len() >= batch.max(1) {
            copiati += buf.len() as u64;
            if let Err(e) = rt.block_on(dst.import(std::mem::take(&mut buf))) {
                errore = Some(e.to_string());
                break;
            }
            if copiati % 10_000 < batch as u64 {
                eprintln!("pdd: {copiati} records copied");
            }
        }
    }
    drop(rx);
    let esportato = esportatore
        .join()
        .map_err(|_| "the export stopped unexpectedly".to_string())?;
    if let Some(e) = errore {
        return Err(format!("copy stopped after {copiati} records: {e}"));
    }
    esportato?;
    if !buf.is_empty() {
        copiati += buf.len() as u64;
        rt.block_on(dst.import(buf)).map_err(|e| e.to_string())?;
    }
    eprintln!("pdd: {copiati} records copied; checking");
    // Checked: the same records per kind on both sides, and a sample read back equal.
    let (a, b) = (conta(&src)?, conta(&dst)?);
    let mut diversi = Vec::new();
    println!("{:<14} {:>10} {:>10}", "KIND", "FROM", "TO");
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let (x, y) = (
            a.get(k).copied().unwrap_or(0),
            b.get(k).copied().unwrap_or(0),
        );
        println!("{k:<14} {x:>10} {y:>10}");
        if x != y {
            diversi.push(format!("{k}: {x} in the source, {y} in the copy"));
        }
    }
    let campione = esegui(async {
        let mut diff = Vec::new();
        let ex = src.exchanges_between(None, None).await?;
        let passo = (ex.len() / 100).max(1);
        for e in ex.iter().step_by(passo) {
            if src.exchange(e.seq).await? != dst.exchange(e.seq).await? {
                diff.push(format!("exchange {} differs", e.seq));
            }
        }
        for t in [
            crate::modulo::Tipo::Candidatura,
            crate::modulo::Tipo::Vacancy,
        ] {
            let m = src.moduli(t).await?;
            let passo = (m.len() / 100).max(1);
            for x in m.iter().step_by(passo) {
                if dst.modulo(t, &x.code).await?.as_ref() != Some(x) {
                    diff.push(format!("modulo {}/{} differs", t.as_str(), x.code));
                }
            }
        }
        Ok::<_, StoreError>(diff)
    })?
    .map_err(|e| e.to_string())?;
    diversi.extend(campione);
    if diversi.is_empty() {
        println!("copied and checked: {copiati} records, the same per kind; sampled exchanges and moduli equal");
        Ok(ExitCode::SUCCESS)
    } else {
        for d in &diversi {
            eprintln!("pdd: {d}");
        }
        Ok(ExitCode::from(1))
    }
}
