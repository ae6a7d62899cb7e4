//! A private PostgreSQL server for tests, `pdd bench --store postgres` and the cluster example:
//! its own data folder in a temp dir, its own loopback port and socket folder, stopped when
//! dropped, and also when the process that started it dies (a watchdog), so that a killed test
//! run leaves no server behind. As root it runs as the `postgres` user (PostgreSQL refuses
//! root). It never touches a server it did not start.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{free_loopback, io, KitError, TempDir};

/// A running private server.
pub struct Postgres {
    /// `postgres://pdd@127.0.0.1:PORT/postgres`: the superuser `pdd`, trusted on loopback.
    pub url: String,
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    /// The server's options (port, sockets, durability), for a restart.
    opzioni: String,
    dir: TempDir,
}

/// Where the server's programs are: `PDD_PG_BIN`, `pg_ctl` on the PATH, or Debian's
/// `/usr/lib/postgresql/<version>/bin` (the newest).
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("PDD_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            if d.join("pg_ctl").is_file() && d.join("initdb").is_file() {
                return Some(d);
            }
        }
    }
    let mut versioni: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let b = e.path().join("bin");
            b.join("initdb").is_file().then_some((v, b))
        })
        .collect();
    versioni.sort();
    versioni.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    // Our uid from /proc: no libc call for one number.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgKitError {
    #[error("PostgreSQL's server programs (initdb, pg_ctl) are not installed (Debian: apt-get install postgresql; or set PDD_PG_BIN)")]
    NotInstalled,
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error(transparent)]
    Kit(#[from] KitError),
}

/// Options of the server.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Flush the WAL at commit (a durable server). Off makes tests faster; a benchmark keeps it.
    pub durable: bool,
    pub max_connections: u32,
    /// TLS with this certificate and key (PEM): the server then accepts TCP connections over
    /// TLS only (`hostssl` in pg_hba.conf).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Default for PgSettings {
    fn default() -> Self {
        PgSettings {
            durable: true,
            max_connections: 200,
            tls: None,
        }
    }
}

impl Postgres {
    /// Makes a data folder and starts a server on a free loopback port.
    pub fn start(tag: &str, s: PgSettings) -> Result<Postgres, PgKitError> {
        let bin = bin_dir().ok_or(PgKitError::NotInstalled)?;
        let dir = TempDir::create(&format!("pg-{tag}"))?;
        let as_postgres = is_root();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir_all(&sock).map_err(io(&sock))?;
        let log = dir.path().join("server.log");
        std::fs::write(&log, b"").map_err(io(&log))?;
        if as_postgres {
            // The server's user must own its folders and its log.
            for p in [dir.path(), &sock, &log] {
                al_server(p)?;
            }
        }
        let run = |prog: &str, args: &[&str]| -> Result<(), PgKitError> {
            let mut c = comando(&bin, as_postgres, prog);
            let out = c
                .args(args)
                .stdin(Stdio::null())
                .output()
                .map_err(|e| fallito(prog, e.to_string()))?;
            if !out.status.success() {
                return Err(fallito(
                    prog,
                    format!(
                        "{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ),
                ));
            }
            Ok(())
        };
        let d = data.to_string_lossy().into_owned();
        run(
            "initdb",
            &[
                "-D",
                &d,
                "-U",
                "pdd",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-instructions",
            ],
        )?;
        let mut ssl = String::new();
        if let Some((cert, key)) = &s.tls {
            let (c, k) = (dir.path().join("server.crt"), dir.path().join("server.key"));
            std::fs::copy(cert, &c).map_err(io(&c))?;
            std::fs::copy(key, &k).map_err(io(&k))?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600))
                    .map_err(io(&k))?;
            }
            if as_postgres {
                for p in [&c, &k] {
                    al_server(p)?;
                }
            }
            // TCP over TLS only; the socket for the kit's own psql.
            let hba = data.join("pg_hba.conf");
            std::fs::write(
                &hba,
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            )
            .map_err(io(&hba))?;
            ssl = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                c.display(),
                k.display()
            );
        }
        // A port free when asked can be taken before the server binds it: try a few.
        let mut ultimo = String::new();
        for _ in 0..3 {
            let port = free_loopback()?.port();
            // PDD_PG_OPTIONS: more server options, e.g. to profile
            // ("-c shared_preload_libraries=pg_stat_statements").
            let opzioni = format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections={} -c fsync={} -c synchronous_commit={} -c full_page_writes={} {}",
                sock.display(),
                s.max_connections,
                on(s.durable),
                on(s.durable),
                on(s.durable),
                std::env::var("PDD_PG_OPTIONS").unwrap_or_default(),
            ) + &ssl;
            let l = log.to_string_lossy().into_owned();
            match run(
                "pg_ctl",
                &[
                    "-D", &d, "-o", &opzioni, "-l", &l, "-w", "-t", "60", "start",
                ],
            ) {
                Ok(()) => {
                    let pg = Postgres {
                        url: format!("postgres://pdd@127.0.0.1:{port}/postgres"),
                        port,
                        bin,
                        data,
                        as_postgres,
                        opzioni,
                        dir,
                    };
                    pg.watchdog();
                    return Ok(pg);
                }
                Err(e) => {
                    ultimo = format!("{e}; {}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        }
        Err(fallito("pg_ctl start", ultimo))
    }

    /// Stops the server when this process is gone, however it ends.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {run}{pg_ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            run = if self.as_postgres { "runuser -u postgres -- " } else { "" },
            pg_ctl = pg_ctl.display(),
            data = self.data.display(),
            dir = self.dir.path().display(),
        );
        let _ = Command::new("sh")
            .arg("-c")
            .arg(stop)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    /// A URL of this server whose connections use `schema` (created if missing): tests share
    /// one server, each in a schema of its own.
    pub fn url_in_schema(&self, schema: &str) -> Result<String, PgKitError> {
        self.psql(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))?;
        Ok(format!("{}?options=-c%20search_path%3D{schema}", self.url))
    }

    /// Runs SQL with `psql` as the superuser.
    pub fn psql(&self, sql: &str) -> Result<String, PgKitError> {
        // Debian puts psql on the PATH (the client package), not beside the server.
        let psql = Some(self.bin.join("psql"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("psql"));
        let out = Command::new(psql)
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url,
                "-c",
                sql,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fallito("psql", e.to_string()))?;
        if !out.status.success() {
            return Err(fallito(
                "psql",
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Stops the server now (`fast`: sessions are ended, the data stays consistent).
    pub fn stop(&self) -> Result<(), PgKitError> {
        self.pg_ctl(&["stop", "-m", "fast"])
    }

    /// Starts it again after [`Postgres::stop`], on the same port.
    pub fn restart(&self) -> Result<(), PgKitError> {
        let l = self.dir.path().join("server.log");
        self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "60",
            "-o",
            &self.opzioni,
            "-l",
            &l.to_string_lossy(),
        ])
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), PgKitError> {
        let d = self.data.to_string_lossy().into_owned();
        let out = comando(&self.bin, self.as_postgres, "pg_ctl")
            .args(["-D", &d])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fallito("pg_ctl", e.to_string()))?;
        if !out.status.success() {
            return Err(fallito(
                &format!("pg_ctl {}", args.join(" ")),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
    }
}

/// Gives a file to the server's user (as root, the server runs as `postgres`).
fn al_server(p: &Path) -> Result<(), PgKitError> {
    let st = Command::new("chown")
        .arg("postgres:postgres")
        .arg(p)
        .status()
        .map_err(|e| fallito("chown", e.to_string()))?;
    if !st.success() {
        return Err(fallito("chown", format!("{} {st}", p.display())));
    }
    Ok(())
}

fn comando(bin: &Path, as_postgres: bool, prog: &str) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(prog));
        c
    } else {
        Command::new(bin.join(prog))
    }
}

fn on(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn fallito(what: &str, detail: String) -> PgKitError {
    PgKitError::Failed {
        what: what.to_string(),
        detail: detail.trim().to_string(),
    }
}
