//! Shared helpers for integration tests: a real gateway on a loopback port, temp stores, HTTP.
#![allow(dead_code)]

pub mod mutator;
pub mod peers;
pub mod xmllint_batch;

/// Temp dirs, free loopback ports and the throw-away PKI, shared with `pdd bench`.
#[allow(unused_imports, reason = "each test uses some")]
pub use pdd::kit::{free_port, free_ports, KeyPair, Pki, TempDir};
#[allow(unused_imports, reason = "each test uses some")]
pub use peers::{govway_testfiles, shared, xsd, Peer};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pdd::clock::{Clock, SystemClock};
use pdd::config::Config;
use pdd::gateway::Gateway;
use pdd::store::SledStore;
use tokio::sync::oneshot;

/// A gateway served on 127.0.0.1:<ephemeral port>.
pub struct Running {
    pub addr: SocketAddr,
    /// The plain loopback listener for local systems, when the main one speaks TLS.
    pub local: Option<SocketAddr>,
    pub gw: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub dir: TempDir,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> TempDir {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let dir = std::mem::replace(&mut self.dir, TempDir(PathBuf::new()));
        drop(self);
        dir
    }
}

pub async fn start(config: Config) -> Running {
    start_with_clock(config, Arc::new(SystemClock)).await
}

pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Running {
    start_in(config, clock, TempDir::new("gw")).await
}

/// Starts on an existing data directory (to test restarts).
pub async fn start_in(mut config: Config, clock: Arc<dyn Clock>, dir: TempDir) -> Running {
    config.data = dir.0.join("data");
    let store =
        SledStore::open_waiting(&config.data, std::time::Duration::from_secs(5)).expect("store");
    start_on(config, Arc::new(store), clock, dir).await
}

/// Starts on a store of the caller's (an engine wrapped to fail on request).
pub async fn start_on(
    config: Config,
    store: Arc<dyn pdd::store::Store>,
    clock: Arc<dyn Clock>,
    dir: TempDir,
) -> Running {
    let partners = store.partners().await.expect("partners");
    let registry = config.build_registry_with(&partners).expect("registry");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let local_listener = if config.tls_on() {
        Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        )
    } else {
        None
    };
    let local = local_listener
        .as_ref()
        .map(|l| l.local_addr().expect("addr"));
    let gw = Arc::new(pdd::server::gateway(config, registry, store, clock, None).expect("gateway"));
    let (tx, rx) = oneshot::channel();
    let g = gw.clone();
    let task = tokio::spawn(async move {
        let _ = pdd::server::serve(g, listener, local_listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Running {
        addr,
        local,
        gw,
        stop: Some(tx),
        task: Some(task),
        dir,
    }
}

/// How long [`eventually`] waits, and how often it asks.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);
const EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// The sled database under a store, opened as sled itself would be after a disk fault, with the
/// log's segment size the store was made with (sled refuses to open it with another).
pub fn sled_grezzo(path: &std::path::Path) -> sled::Db {
    let mut config = sled::Config::new().path(path);
    if let Some(segmento) = pdd::store::segmento(path) {
        config = config.segment_size(segmento);
    }
    config.open().unwrap()
}

/// Waits until `f` holds, asking every 50 ms, for at most 20 s; then fails naming `what`.
/// The one polling loop of the tests (integration tests watch real servers and processes).
pub async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t = std::time::Instant::now();
    while !f().await {
        assert!(t.elapsed() < PATIENCE, "timed out waiting for: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

/// [`eventually`] for blocking code (it blocks its thread, and so may run inside a runtime).
pub fn eventually_blocking(what: &str, mut f: impl FnMut() -> bool) {
    let t = std::time::Instant::now();
    while !f() {
        assert!(t.elapsed() < PATIENCE, "timed out waiting for: {what}");
        std::thread::sleep(EVERY);
    }
}

pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// The body as received (`body` is its lossy text).
    pub octets: bytes::Bytes,
}

impl Reply {
    pub fn header(&self, nome: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(nome))
            .map(|(_, v)| v.as_str())
    }
}

/// POSTs raw bytes with a text/xml content type (unless `headers` give one), over a fresh
/// HTTP/1.1 connection.
pub async fn post(url: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Reply {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::post(url).header("SOAPAction", "\"\"");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("Content-Type"))
    {
        req = req.header("Content-Type", "text/xml; charset=utf-8");
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let resp = client.request(req).await.expect("HTTP request");
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        headers,
        octets: body,
    }
}

/// A busta request, written out by hand (independent of the project's writer).
pub struct Req<'a> {
    pub mittente: &'a str,
    pub destinatario: &'a str,
    pub servizio: &'a str,
    pub azione: Option<&'a str>,
    pub profilo: &'a str,
    pub id: String,
    pub ora: String,
    pub scadenza: Option<String>,
    pub body: String,
}

impl<'a> Req<'a> {
    /// A request stamped now, with a unique counter.
    pub fn new(
        mittente: &'a str,
        destinatario: &'a str,
        servizio: &'a str,
        azione: Option<&'a str>,
        body: String,
    ) -> Req<'a> {
        let now = chrono::Local::now();
        Req {
            mittente,
            destinatario,
            servizio,
            azione,
            profilo: "EGOV_IT_ServizioSincrono",
            id: id(mittente, now.naive_local()),
            ora: now.format("%Y-%m-%dT%H:%M:%S%.3f").to_string(),
            scadenza: None,
            body,
        }
    }

    /// EMILIA's synchronous ClicLavoro InvioCandidatura to the Ministry, carrying `body`.
    pub fn invio(body: String) -> Req<'static> {
        Req::new(
            "EMILIA",
            "MinisteroLavoro",
            "ClicLavoro",
            Some("InvioCandidatura"),
            body,
        )
    }

    /// The same carrying the sample Candidatura 2.0.
    pub fn candidatura() -> Req<'static> {
        Req::invio(invio_candidatura(&example("moduli/candidatura-2.0.xml")))
    }

    pub fn xml(&self) -> String {
        let azione = self
            .azione
            .map(|a| format!("<eGov_IT:Azione>{a}</eGov_IT:Azione>"))
            .unwrap_or_default();
        let scadenza = self
            .scadenza
            .as_ref()
            .map(|s| format!("<eGov_IT:Scadenza>{s}</eGov_IT:Scadenza>"))
            .unwrap_or_default();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Header>
  <eGov_IT:Intestazione xmlns:eGov_IT="http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/" soapenv:actor="http://www.cnipa.it/eGov_it/portadominio" soapenv:mustUnderstand="1">
   <eGov_IT:IntestazioneMessaggio>
    <eGov_IT:Mittente><eGov_IT:IdentificativoParte tipo="SPC">{m}</eGov_IT:IdentificativoParte></eGov_IT:Mittente>
    <eGov_IT:Destinatario><eGov_IT:IdentificativoParte tipo="SPC">{d}</eGov_IT:IdentificativoParte></eGov_IT:Destinatario>
    <eGov_IT:ProfiloCollaborazione>{p}</eGov_IT:ProfiloCollaborazione>
    <eGov_IT:Servizio tipo="SPC">{s}</eGov_IT:Servizio>{azione}
    <eGov_IT:Messaggio><eGov_IT:Identificatore>{id}</eGov_IT:Identificatore><eGov_IT:OraRegistrazione tempo="EGOV_IT_SPC">{ora}</eGov_IT:OraRegistrazione>{scadenza}</eGov_IT:Messaggio>
    <eGov_IT:ProfiloTrasmissione inoltro="EGOV_IT_ALPIUUNAVOLTA" confermaRicezione="false"/>
   </eGov_IT:IntestazioneMessaggio>
  </eGov_IT:Intestazione>
 </soapenv:Header>
 <soapenv:Body>{body}</soapenv:Body>
</soapenv:Envelope>"#,
            m = self.mittente,
            d = self.destinatario,
            p = self.profilo,
            s = self.servizio,
            id = self.id,
            ora = self.ora,
            body = self.body
        )
    }
}

/// A fresh Identificatore of `nome` (porta `<nome>SPCoopIT`) for the minute of `t`.
pub fn id(nome: &str, t: chrono::NaiveDateTime) -> String {
    static N: AtomicU32 = AtomicU32::new(1);
    format!(
        "{nome}_{nome}SPCoopIT_{:07}_{}",
        N.fetch_add(1, Ordering::Relaxed) + 5_000_000,
        t.format("%Y-%m-%d_%H:%M")
    )
}

/// The escaped `invioCandidatura` body for a modulo.
pub fn invio_candidatura(modulo: &str) -> String {
    let esc = modulo
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<types:invioCandidatura xmlns:types="http://servizi.lavoro.gov.it/cliclavoro/types"><types:CandidaturaXML>{esc}</types:CandidaturaXML></types:invioCandidatura>"#
    )
}

pub fn example(name: &str) -> String {
    std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name),
    )
    .expect("example file")
}

/// Whether build.rs found `peer` missing and left its tests ignored (never a required peer
/// under `PDD_REQUIRE_PEERS`).
fn probed_missing(peer: Peer) -> bool {
    match peer {
        Peer::Xmllint => cfg!(pdd_no_xmllint),
        Peer::Xmlsec1 => cfg!(pdd_no_xmlsec1),
        Peer::Curl => cfg!(pdd_no_curl),
        Peer::Python => cfg!(pdd_no_python),
        Peer::Xsd => cfg!(pdd_no_xsd),
        Peer::Govway => cfg!(pdd_no_govway),
        Peer::Postgres => cfg!(pdd_no_postgres),
        Peer::Haproxy => cfg!(pdd_no_haproxy),
        Peer::Chromium => cfg!(pdd_no_chromium),
        Peer::Zsh => cfg!(pdd_no_zsh),
        Peer::Fish => cfg!(pdd_no_fish),
        Peer::Groff => cfg!(pdd_no_groff),
        Peer::Man => cfg!(pdd_no_man),
        Peer::SystemdAnalyze => cfg!(pdd_no_systemd_analyze),
        Peer::Tmpfs => cfg!(pdd_no_tmpfs),
    }
}

/// For a test marked `#[cfg_attr(pdd_no_<peer>, ignore = "...")]`, which runs because the
/// peer was there at build time or is required: fails, naming it, when it is not here now.
pub fn require(peer: Peer) {
    assert!(
        peer.present(),
        "{}{}",
        peer.missing(),
        if peers::required() && peer.required() {
            ", and PDD_REQUIRE_PEERS is set"
        } else {
            ", though it was there when the tests were built"
        }
    );
}

/// For a test that uses `peer` in one of its parts: whether to run that part. False (said on
/// stderr) when the build found it missing; otherwise it must be here ([`require`]).
pub fn have(peer: Peer) -> bool {
    if probed_missing(peer) {
        eprintln!("SKIP part of this test: {}", peer.missing());
        return false;
    }
    require(peer);
    true
}

/// Validates an XML document against a schema with xmllint; returns xmllint's complaint if any.
pub fn xmllint(xml: &str, schema: &std::path::Path) -> Result<(), String> {
    let dir = TempDir::new("xmllint");
    let f = dir.0.join("doc.xml");
    std::fs::write(&f, xml).expect("write");
    let out = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(schema)
        .arg(&f)
        .output()
        .expect("xmllint runs");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The text of the first element with this local name (any prefix, any attributes).
pub fn text_of<'a>(xml: &'a str, local: &str) -> Option<&'a str> {
    let mut from = 0;
    while let Some(i) = xml[from..].find(local).map(|i| i + from) {
        from = i + local.len();
        let before = xml[..i].chars().last();
        let after = xml[from..].chars().next();
        let opens =
            matches!(before, Some('<') | Some(':')) && matches!(after, Some('>') | Some(' '));
        let is_start = opens
            && xml[..i]
                .rfind('<')
                .is_some_and(|lt| !xml[lt..i].contains('/') && !xml[lt..i].contains('>'));
        if is_start {
            let start = xml[from..].find('>')? + from + 1;
            let end = xml[start..].find("</")? + start;
            return Some(&xml[start..end]);
        }
    }
    None
}

/// The whole `eGov_IT:Intestazione` element of a message, as a standalone document.
pub fn intestazione(xml: &str) -> Option<&str> {
    let s = xml.find("<eGov_IT:Intestazione")?;
    let e = xml.find("</eGov_IT:Intestazione>")? + "</eGov_IT:Intestazione>".len();
    Some(&xml[s..e])
}

/// The verification rules of the tests, judged at `now`: 60 s of skew, 5-minute Timestamps.
pub fn regole(now: chrono::DateTime<chrono::Utc>) -> pdd::wssec::dsig::Regole {
    pdd::wssec::dsig::Regole {
        now,
        tolleranza: chrono::Duration::seconds(60),
        durata_massima: chrono::Duration::minutes(5),
        copertura: pdd::wssec::dsig::Copertura::IntestazioneMessaggio,
    }
}

/// pdd's verification of a signed SOAP message, judged now.
pub fn verify_signed(msg: &str) -> Result<pdd::wssec::dsig::Firmato, pdd::wssec::dsig::FirmaError> {
    let env = pdd::soap::Envelope::parse(msg.as_bytes(), pdd::xml::Limits::default()).unwrap();
    pdd::wssec::dsig::verifica(msg, &env, &regole(chrono::Utc::now()))
}

/// Namespaces of what our signatures cover, written out here (independent of the project's).
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
pub const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const EGOV: &str = "http://www.cnipa.it/schemas/2003/eGovIT/Busta1_0/";

/// The elements our signatures point at, as xmlsec1 must be told (`--id-attr`).
pub fn id_attrs() -> Vec<String> {
    [
        format!("{SOAP}:Body"),
        format!("{EGOV}:IntestazioneMessaggio"),
        format!("{EGOV}:Intestazione"),
        format!("{WSU}:Timestamp"),
    ]
    .iter()
    .flat_map(|a| ["--id-attr:Id".to_string(), a.clone()])
    .collect()
}

/// A signature template of our shape for xmlsec1 to sign: `signed` (a message pdd signed) with
/// its digests and signature value emptied.
pub fn xmlsec_template(signed: &str) -> String {
    let mut t = signed.to_string();
    for tag in ["DigestValue", "SignatureValue"] {
        let open = format!("<ds:{tag}>");
        let close = format!("</ds:{tag}>");
        let mut from = 0;
        while let Some(i) = t[from..].find(&open).map(|i| i + from) {
            let j = t[i..].find(&close).unwrap() + i;
            t.replace_range(i + open.len()..j, "");
            from = i + open.len();
        }
    }
    t
}

/// Runs curl (a real peer) and returns (exit status, HTTP status, body).
pub fn curl(args: &[&str], body: &[u8]) -> (i32, u16, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("curl")
        .args([
            "-s",
            "-S",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            "Content-Type: text/xml; charset=utf-8",
            "--data-binary",
            "@-",
        ])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("curl runs");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, "0"));
    (
        out.status.code().unwrap_or(-1),
        code.trim().parse().unwrap_or(0),
        body.to_string(),
    )
}

/// The `pdd` binary, with a clean environment for its configuration.
pub fn pdd_bin() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pdd"));
    c.env("RUST_LOG", "info")
        .env_remove("PDD_CONFIG")
        .env_remove("PDD_DATA")
        .env_remove("PDD_LISTEN");
    c
}

/// Where a `pdd` command finds its store.
#[derive(Clone, Copy)]
pub enum On<'a> {
    /// `--data DIR`.
    Data(&'a std::path::Path),
    /// `--config FILE`, run in the file's directory (where its relative paths resolve).
    Config(&'a std::path::Path),
}

/// `pdd` with `args`, run to its end on a store: (exit code, -1 when killed by a signal;
/// stdout; stderr).
pub fn pdd_cli(on: On<'_>, args: &[&str]) -> (i32, String, String) {
    let mut c = pdd_bin();
    match on {
        On::Data(dir) => c.arg("--data").arg(dir),
        On::Config(file) => c
            .current_dir(file.parent().expect("a config file in a directory"))
            .arg("--config")
            .arg(file),
    };
    let out = c.args(args).output().expect("pdd runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The Content-Type header of a SOAP 1.1 request, for [`http`].
pub const CT_XML: (&str, &str) = ("Content-Type", "text/xml; charset=utf-8");

/// A plain blocking HTTP/1.1 request on a fresh connection (`Connection: close`, its
/// Content-Length, then `headers`), read to the end: (status, body). None when the server
/// cannot be reached within 5 s or goes away, no byte comes for 60 s, or the answer is not HTTP.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// `pdd serve` as a child process; its stderr (the log) is collected line by line.
pub struct PddProcess {
    pub child: std::process::Child,
    /// The address of the main listener, from the "pdd listening on" line.
    pub addr: String,
    pub log: Vec<String>,
    rx: std::sync::mpsc::Receiver<String>,
}

impl PddProcess {
    /// Starts `pdd <args>` and waits (20 s at most) until it listens.
    pub fn spawn(args: &[&std::ffi::OsStr]) -> PddProcess {
        Self::spawn_in(&std::env::current_dir().unwrap(), args)
    }

    /// `pdd serve --listen 127.0.0.1:0 --data DATA`.
    pub fn serve_data(data: &std::path::Path) -> PddProcess {
        Self::spawn(&[
            "serve".as_ref(),
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ])
    }

    /// `pdd serve --config FILE`, in the file's directory (where its relative paths resolve).
    pub fn serve_config(file: &std::path::Path) -> PddProcess {
        Self::spawn_in(
            file.parent().expect("a config file in a directory"),
            &["serve".as_ref(), "--config".as_ref(), file.as_os_str()],
        )
    }

    /// `pdd serve --config FILE` with variables set in its environment.
    pub fn serve_config_env(file: &std::path::Path, env: &[(&str, &str)]) -> PddProcess {
        let dir = file.parent().expect("a config file in a directory");
        let mut p = Self::avvia_env(
            dir,
            &["serve".as_ref(), "--config".as_ref(), file.as_os_str()],
            env,
        );
        p.ascolta();
        p
    }

    /// The same, in working directory `dir` (relative paths of a config resolve there).
    pub fn spawn_in(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> PddProcess {
        let mut p = Self::avvia(dir, args);
        p.ascolta();
        p
    }

    /// Waits until it listens, and takes the address it logs.
    fn ascolta(&mut self) {
        let p = self;
        let line = p.wait_for("pdd listening on ");
        let rest = &line[line.find("pdd listening on ").unwrap() + "pdd listening on ".len()..];
        let url = rest.split_whitespace().next().unwrap();
        p.addr = url.split("://").nth(1).unwrap_or(url).to_string();
    }

    /// `pdd <args>` in `dir`, its log collected line by line; nothing waited for.
    fn avvia(dir: &std::path::Path, args: &[&std::ffi::OsStr]) -> PddProcess {
        Self::avvia_env(dir, args, &[])
    }

    fn avvia_env(
        dir: &std::path::Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> PddProcess {
        use std::io::BufRead;
        let mut child = pdd_bin()
            .current_dir(dir)
            .envs(env.iter().copied())
            .args(args)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("pdd runs");
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        PddProcess {
            child,
            addr: String::new(),
            log: Vec::new(),
            rx,
        }
    }

    /// `pdd serve --config FILE` in `dir`, without waiting for it to listen (for one expected
    /// to exit); its log is collected as for [`PddProcess::spawn`], and it is killed on drop.
    pub fn spawn_exiting(dir: &std::path::Path, file: &std::path::Path) -> PddProcess {
        Self::avvia(
            dir,
            &["serve".as_ref(), "--config".as_ref(), file.as_os_str()],
        )
    }

    /// Waits (as [`eventually_blocking`]) until the process exits: its exit code and its
    /// whole log. One that keeps running fails the test (and is killed when dropped).
    pub fn wait_exit(mut self, what: &str) -> (Option<i32>, String) {
        let mut stato = None;
        eventually_blocking(what, || {
            stato = self.child.try_wait().unwrap();
            stato.is_some()
        });
        while let Ok(l) = self.rx.recv_timeout(std::time::Duration::from_millis(200)) {
            self.log.push(l);
        }
        (stato.and_then(|s| s.code()), self.log.join("\n"))
    }

    /// The first (further) log line containing `needle`; panics after 20 s.
    pub fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("pdd did not log '{needle}':\n{}", self.log.join("\n")));
            self.log.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// SIGTERM, then waits (10 s at most); returns the exit status and the whole log.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let sent = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let mut status = None;
        eventually_blocking("pdd stops on SIGTERM", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        let status = status.unwrap();
        while let Ok(l) = self.rx.recv_timeout(std::time::Duration::from_millis(200)) {
            self.log.push(l);
        }
        (status, self.log.join("\n"))
    }
}

impl Drop for PddProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A Rev.038 Candidatura from the sample, with its own code, ambito and dates of today.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn cv_di_oggi(codice: &str, ambito: &str) -> pdd::modulo::model::candidatura::Candidatura {
    use pdd::modulo::Modulo;
    let xml = example("moduli/candidatura-rev038.xml");
    let root = pdd::xml::parse_document(xml.as_bytes(), pdd::xml::Limits::default()).unwrap();
    let Some(Modulo::Candidatura(mut c)) = Modulo::leggi(&root) else {
        panic!("the sample is a Candidatura")
    };
    let oggi = chrono::Local::now();
    let d = &mut c.dati_sistema;
    d.codicecandidatura = codice.into();
    d.ambitodiffusione = vec![ambito.into()];
    d.datainserimento = oggi.format("%Y-%m-%dT%H:%M:%S").to_string().into();
    d.datascadenza = Some(
        (oggi.date_naive() + chrono::Days::new(40))
            .to_string()
            .into(),
    );
    c
}

/// `DIR/NOME.toml` for a node on plain HTTP (loopback): its listener, store, role and
/// soggetto, a fast outbox, and its partners by name and port.
#[allow(dead_code, reason = "not every test binary uses every helper")]
pub fn config_nodo(
    dir: &std::path::Path,
    nome: &str,
    soggetto: &str,
    role: &str,
    porta: u16,
    partners: &[(&str, u16)],
) -> std::path::PathBuf {
    let mut c = format!(
        "listen = \"127.0.0.1:{porta}\"\ndata = \"{}\"\nrole = \"{role}\"\n\n\
         [soggetto]\nnome = \"{soggetto}\"\n\n\
         [outbox]\nretry_min_secs = 1\nretry_max_secs = 1\n",
        dir.join(format!("{nome}-data")).display(),
    );
    for (partner, p) in partners {
        c.push_str(&format!(
            "\n[[registry.soggetti]]\nnome = \"{partner}\"\nurl = \"http://127.0.0.1:{p}/pdd/PA\"\n"
        ));
    }
    let f = dir.join(format!("{nome}.toml"));
    std::fs::write(&f, c).unwrap();
    f
}
