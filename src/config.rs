//! Configuration: embedded defaults, overridden by a TOML file, overridden by the command line.
//! Every key is documented in `examples/pdd.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::egov::{Parte, ProfiloGestione, Tempo};
use crate::registry::{self, ErroriStruttura, Registry, RegistryError, Servizio, Soggetto};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP listener.
    pub listen: SocketAddr,
    /// Directory of the sled store.
    pub data: PathBuf,
    /// When `listen` speaks TLS: a plain-HTTP loopback listener for local systems (the porta
    /// delegata), the CLI (`/admin`) and health checks. Default 127.0.0.1 on a free port
    /// (logged, and recorded in `<data>/listen.addr`).
    pub local_listen: Option<SocketAddr>,
    /// A listener for the read API alone (/api/… and /health), for a portal or a proxy that
    /// must not reach the porta delegata or /admin; loopback (put TLS in front). Unset: the
    /// API answers on the local listener (and to partners on the TLS listener).
    pub api_listen: Option<SocketAddr>,
    /// The node's part in the ClicLavoro network: "ncn" (the Ministry's National Coordination
    /// Node: disseminates what it receives), "nr" (a Regional Node) or "none" (a plain gateway).
    pub role: crate::rete::Ruolo,
    /// Our own soggetto.
    pub soggetto: Own,
    pub limits: Limits,
    pub busta: BustaCfg,
    pub porta_delegata: PortaDelegataCfg,
    pub cliclavoro: ClicLavoroCfg,
    pub outbox: OutboxCfg,
    pub store: StoreCfg,
    pub cluster: ClusterCfg,
    pub tls: TlsCfg,
    pub wssec: WssecCfg,
    pub registry: RegistryCfg,
}

/// The store's engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[default]
    Sled,
    Postgres,
}

impl StoreCfg {
    /// The database URL: `PDD_STORE_URL`, else `[store] url`.
    pub fn url(&self) -> Option<String> {
        std::env::var("PDD_STORE_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| self.url.clone())
    }
}

/// This node's identity among the nodes sharing one database.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterCfg {
    /// A name unique in the cluster, in logs, metrics and /health (default: the host name).
    pub node: Option<String>,
    /// 0..99, unique among the live nodes: the first two digits of the serial of every
    /// Identificatore this node issues, so that no two nodes issue the same one. Required
    /// with the "postgres" engine.
    pub numero: Option<u8>,
    /// How long a node's leases last without renewal (a destination's queue in the outbox,
    /// the validity sweeper, retention): when a node dies, another takes its work over after
    /// at most this long.
    pub lease_secs: u64,
    /// How often a node reads the partners and users other nodes added (`pdd partner add`
    /// on a shared database), and rebuilds its registry when they changed.
    pub poll_secs: u64,
}

impl Default for ClusterCfg {
    fn default() -> Self {
        ClusterCfg {
            node: None,
            numero: None,
            lease_secs: 30,
            poll_secs: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreCfg {
    /// "sled" (embedded, in `data`: one node) or "postgres" (a database several nodes share:
    /// a cluster, see docs/cluster.md).
    pub engine: Engine,
    /// The database of the "postgres" engine, `postgres://user[:password]@host[:port]/db`;
    /// `PDD_STORE_URL` in the environment overrides it (keep the password out of the file).
    pub url: Option<String>,
    /// Connections to the database kept open at most, per node.
    pub pool: usize,
    /// The database server's CA (PEM), for TLS to the database: asked by the url's
    /// `sslmode=require` (or `verify-ca`, `verify-full`); the server's certificate and name are
    /// checked against it.
    pub ca: Option<PathBuf>,
    /// Exchanges (with their raw messages and ids index entries) older than this are purged;
    /// 0 keeps them for ever. Moduli, outbox entries and partners are never purged.
    pub retention_days: u32,
    /// Duplicate-filter entries older than this are purged, once their busta is past its
    /// expiry (older buste are refused as expired, EGOV_IT_301, before the filter is asked);
    /// never shorter than `[busta] scadenza_minuti`. 0 keeps them for ever.
    pub duplicate_window_days: u32,
    /// How often the gateway purges (also once at start).
    pub purge_every_secs: u64,
    /// Memory for sled's cache of store pages, in MiB. What is hot (recent ids, the newest
    /// moduli, counters) is small; more cache costs resident memory, not speed.
    pub cache_mb: u64,
    /// A new embedded store compresses what it writes (zstd): about a seventh of the room on
    /// disk, for twice the CPU per exchange and more memory with large messages (sled makes a
    /// compression context for every record it logs). Off by default. A store keeps the choice
    /// it was made with (its backups too).
    pub compression: bool,
    /// Under this much free space (MiB) on the file system of `data`, the log warns and
    /// `/health` says so (`/metrics`: `pdd_store_free_bytes`); 0: no warning.
    pub min_free_mb: u64,
    /// After a failed write (a full disk) the embedded store reopens itself as soon as it can;
    /// if it cannot within this many seconds, `pdd serve` exits with status 3 for its
    /// supervisor to restart it (and `/health` says why meanwhile).
    pub recover_within_secs: u64,
}

impl Default for StoreCfg {
    fn default() -> Self {
        StoreCfg {
            engine: Engine::Sled,
            url: None,
            pool: 16,
            ca: None,
            retention_days: 30,
            duplicate_window_days: 5,
            purge_every_secs: 3600,
            cache_mb: 4,
            compression: false,
            min_free_mb: 200,
            recover_within_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsCfg {
    /// Our certificate (PEM). With `key`, the porta applicativa listens on HTTPS, the outbound
    /// client presents it, and outgoing buste are signed with it.
    pub cert: Option<PathBuf>,
    /// Our private key (PEM).
    pub key: Option<PathBuf>,
    /// CAs whose certificates we trust for partners (TLS peers and signature tokens), besides
    /// the certificates pinned in the registry.
    pub ca: Vec<PathBuf>,
    /// Require a client certificate on the porta applicativa (mutual TLS).
    pub client_auth: bool,
}

impl Default for TlsCfg {
    fn default() -> Self {
        TlsCfg {
            cert: None,
            key: None,
            ca: Vec::new(),
            client_auth: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WssecCfg {
    /// Sign outgoing buste (requests and responses); needs `[tls] cert` and `key`.
    /// Default: on when they are set.
    pub firma: Option<bool>,
    /// What of the busta is signed: "intestazione" (the whole eGov_IT:Intestazione, the
    /// default) or "intestazione_messaggio"; a partner may have its own (`copertura` in its
    /// registry entry). On receipt either is accepted, unless the partner's entry asks for the
    /// whole Intestazione.
    pub copertura: crate::wssec::dsig::Copertura,
    /// Verification for partners that set none: "required", "optional" or "off".
    pub verifica: crate::registry::PoliticaFirma,
    /// Lifetime of our Timestamps, and the oldest Created accepted from partners.
    pub timestamp_ttl_secs: i64,
    /// Clock skew tolerated on partners' Timestamps.
    #[serde(alias = "tolleranza_secs")]
    pub clock_skew_secs: i64,
}

impl Default for WssecCfg {
    fn default() -> Self {
        WssecCfg {
            firma: None,
            copertura: crate::wssec::dsig::Copertura::Intestazione,
            verifica: crate::registry::PoliticaFirma::Off,
            timestamp_ttl_secs: 300,
            clock_skew_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClicLavoroCfg {
    /// Version of the moduli: "auto" (detected from each modulo's content), "2.0" or "rev038".
    pub versione: VersioneModuli,
    /// NCN: where EURES documents (Europass CVs, vacancies) are POSTed; none (the default)
    /// keeps them in the store for `pdd eures export DIR`.
    pub eures_url: Option<String>,
    /// How often expired moduli are deactivated (45 days for a Candidatura, 30 for a Vacancy).
    #[serde(alias = "scadenze_ogni_secs")]
    pub expiry_sweep_every_secs: u64,
}

impl Default for ClicLavoroCfg {
    fn default() -> Self {
        ClicLavoroCfg {
            versione: VersioneModuli::Auto,
            eures_url: None,
            expiry_sweep_every_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxCfg {
    /// First wait before a failed forward is retried; it doubles at each failure.
    pub retry_min_secs: u64,
    /// Longest wait between retries (a node back after an outage gets its backlog within this).
    pub retry_max_secs: u64,
}

impl Default for OutboxCfg {
    fn default() -> Self {
        OutboxCfg {
            retry_min_secs: 1,
            retry_max_secs: 300,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersioneModuli {
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "2.0")]
    V2_0,
    #[serde(rename = "rev038")]
    Rev038,
    /// Rev.064 for vacancies (Rev.038 for the other moduli).
    #[serde(rename = "rev064")]
    Rev064,
}

impl VersioneModuli {
    pub fn fissata(self) -> Option<crate::modulo::Versione> {
        match self {
            VersioneModuli::Auto => None,
            VersioneModuli::V2_0 => Some(crate::modulo::Versione::V2_0),
            VersioneModuli::Rev038 => Some(crate::modulo::Versione::Rev038),
            VersioneModuli::Rev064 => Some(crate::modulo::Versione::Rev064),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Own {
    pub tipo: String,
    pub nome: String,
    /// Identificativo porta (CodPdD); default `<nome>SPCoopIT`.
    pub porta: String,
    /// Numeric prefix of the Identificatore counter, for a node of a cluster (1–2 digits).
    pub nodo: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time allowed to receive a request's headers.
    pub header_timeout_secs: u64,
    /// Time allowed to receive a request body; also the timeout of calls to a backend.
    pub request_timeout_secs: u64,
    /// On SIGTERM/Ctrl-C, how long in-flight exchanges may take to finish.
    pub shutdown_grace_secs: u64,
    /// Maximum element nesting in a message.
    pub max_xml_depth: usize,
    /// Exchanges one partner may have in progress at once on the porta applicativa (the
    /// partner: its TLS certificate's soggetto, else its address); more are answered at once
    /// with HTTP 503 and a Fault. 0: no limit.
    #[serde(alias = "partner_concorrenza")]
    pub partner_concurrency: usize,
    /// Bytes of request bodies the porta applicativa holds at once, all partners together
    /// (each request counts its Content-Length, or `max_body_bytes` when chunked); a request
    /// that finds no room within `header_timeout_secs` gets HTTP 503 and a Fault. With the
    /// copies processing makes (about 5 × the body), this bounds the memory bodies can take.
    #[serde(alias = "max_bytes_in_corso")]
    pub max_bytes_in_flight: usize,
    /// The most of `max_bytes_in_flight` one partner's bodies may hold (never less than
    /// `max_body_bytes`); more is refused at once with 503, so one partner exhausts its own
    /// share, not the others'. Local systems each have their share too (see README, "local
    /// systems").
    pub partner_bytes_in_flight: usize,
    /// Bytes of `max_bytes_in_flight` kept for partners with nothing in progress: a partner
    /// with a body in progress may not take them.
    pub reserve_bytes_in_flight: usize,
    /// A request body arriving slower than this (bytes per second, on average since its
    /// headers) is cut with 408 once `min_body_rate_after_secs` have passed. 0: no minimum.
    pub min_body_rate: u64,
    pub min_body_rate_after_secs: u64,
    /// SOAP with Attachments: the most parts a message may carry besides its envelope, and
    /// the largest one (decoded), in bytes. A message over them is refused with EGOV_IT_003;
    /// the whole message stays within `max_body_bytes`.
    pub max_allegati: usize,
    pub max_allegato_bytes: usize,
}

impl Limits {
    /// The limits on a multipart message.
    pub fn mime(&self) -> crate::mime::Limiti {
        crate::mime::Limiti {
            max_allegati: self.max_allegati,
            max_allegato_bytes: self.max_allegato_bytes,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BustaCfg {
    /// A busta with no Scadenza expires this many minutes after its OraRegistrazione or id date.
    pub scadenza_minuti: i64,
    /// Tolerance for dates in the future, in minutes; 0 accepts any future date.
    pub tolleranza_futuro_minuti: i64,
    /// Answer as the DigitPA qualification expects, every fault of a busta in one answer: the
    /// registry's and the profile's beside the value errors the reader found, and under Linee
    /// Guida 1.1 the INFO eccezioni beside the GRAVE ones. False (the default): as GovWay
    /// answers, and its test corpus asserts — the first stage that fails, INFO only when nothing
    /// is GRAVE. A broken structure is answered alone either way.
    pub qualificazione: bool,
    /// Clock kind written in our buste.
    pub tempo: Tempo,
    /// Profile of partners that do not set one.
    pub profilo: ProfiloGestione,
    /// Default answer to structurally broken headers: "fault" (bare EGOV_IT_001) or "busta".
    pub errori_struttura: ErroriStruttura,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortaDelegataCfg {
    /// Destinatario when the request names none (`TIPO/NOME`).
    pub destinatario: Option<String>,
    /// Time allowed for the partner's answer.
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryCfg {
    /// Include the embedded demo registry (regions, INPS, ClicLavoro).
    pub demo: bool,
    pub soggetti: Vec<Soggetto>,
    pub servizi: Vec<Servizio>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8700)),
            data: PathBuf::from("./pdd-data"),
            local_listen: None,
            api_listen: None,
            role: crate::rete::Ruolo::None,
            soggetto: Own::default(),
            limits: Limits::default(),
            busta: BustaCfg::default(),
            porta_delegata: PortaDelegataCfg::default(),
            cliclavoro: ClicLavoroCfg::default(),
            outbox: OutboxCfg::default(),
            store: StoreCfg::default(),
            cluster: ClusterCfg::default(),
            tls: TlsCfg::default(),
            wssec: WssecCfg::default(),
            registry: RegistryCfg::default(),
        }
    }
}

impl Default for Own {
    fn default() -> Self {
        Own {
            tipo: "SPC".into(),
            nome: "MinisteroLavoro".into(),
            porta: String::new(),
            nodo: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            shutdown_grace_secs: 30,
            max_xml_depth: 256,
            partner_concurrency: 64,
            max_bytes_in_flight: 128 * 1024 * 1024,
            partner_bytes_in_flight: 32 * 1024 * 1024,
            reserve_bytes_in_flight: 16 * 1024 * 1024,
            min_body_rate: 1024,
            min_body_rate_after_secs: 5,
            max_allegati: 100,
            max_allegato_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Default for BustaCfg {
    fn default() -> Self {
        BustaCfg {
            scadenza_minuti: 7200,
            tolleranza_futuro_minuti: 5,
            qualificazione: false,
            tempo: Tempo::Spc,
            profilo: ProfiloGestione::LineeGuida11,
            errori_struttura: ErroriStruttura::Fault,
        }
    }
}

impl Default for PortaDelegataCfg {
    fn default() -> Self {
        PortaDelegataCfg {
            destinatario: None,
            timeout_secs: 60,
        }
    }
}

impl Default for RegistryCfg {
    fn default() -> Self {
        RegistryCfg {
            demo: true,
            soggetti: Vec::new(),
            servizi: Vec::new(),
        }
    }
}

/// One problem of a configuration text: where (line, key) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemaToml {
    /// The line (from 1) of the key or value at fault, when TOML places the problem.
    pub riga: Option<usize>,
    /// The key at fault, dotted from the root (`limits.max_body`,
    /// `registry.soggetti[1].url`), when the problem is on one.
    pub chiave: Option<String>,
    /// TOML's message, without the excerpt of the file.
    pub testo: String,
}

impl ProblemaToml {
    fn da(text: &str, e: &toml::de::Error, chiave: Option<String>) -> ProblemaToml {
        let riga = e.span().map(|s| {
            let fine = s.start.min(text.len());
            text.as_bytes()[..fine]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        });
        ProblemaToml {
            riga,
            chiave,
            testo: e.message().trim().to_string(),
        }
    }
}

impl std::fmt::Display for ProblemaToml {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(r) = self.riga {
            write!(f, "line {r}: ")?;
        }
        if let Some(k) = &self.chiave {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.testo)
    }
}

/// Takes out of `table` the innermost key whose name or value holds `span` (the place of a
/// deserialization error), looking into tables and arrays first; its dotted path, or None
/// when no key holds it.
fn togli_chiave(
    table: &mut toml::de::DeTable<'_>,
    originale: &toml::de::DeTable<'_>,
    span: &std::ops::Range<usize>,
    prefisso: &str,
) -> Option<String> {
    let dentro = |r: std::ops::Range<usize>| r.start <= span.start && span.end <= r.end;
    let mut da_togliere = None;
    for (k, v) in table.iter_mut() {
        let path = if prefisso.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefisso}.{}", k.get_ref())
        };
        // The same place in the file as read (keys and tables are only ever taken out).
        let prima = originale.get(k.get_ref().as_ref()).map(|v| v.get_ref());
        match (v.get_mut(), prima) {
            (toml::de::DeValue::Table(t), Some(toml::de::DeValue::Table(o))) => {
                if let Some(p) = togli_chiave(t, o, span, &path) {
                    return Some(p);
                }
            }
            (toml::de::DeValue::Array(a), Some(toml::de::DeValue::Array(o))) => {
                let mut tabella_intera = None;
                for (i, elemento) in a.iter_mut().enumerate() {
                    // Its index in the file, whatever was taken out before it.
                    let n = o
                        .iter()
                        .position(|e| e.span() == elemento.span())
                        .unwrap_or(i);
                    let sp = elemento.span();
                    if let (toml::de::DeValue::Table(t), Some(toml::de::DeValue::Table(ot))) =
                        (elemento.get_mut(), o.get(n).map(|e| e.get_ref()))
                    {
                        if let Some(p) = togli_chiave(t, ot, span, &format!("{path}[{n}]")) {
                            return Some(p);
                        }
                        if dentro(sp) {
                            tabella_intera = Some((i, n));
                            break;
                        }
                    }
                }
                // A table of an array at fault as a whole (a field missing): that table goes.
                if let Some((i, n)) = tabella_intera {
                    let prima = std::mem::replace(a, toml::de::DeArray::new());
                    *a = prima
                        .into_iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, v)| v)
                        .collect();
                    return Some(format!("{path}[{n}]"));
                }
            }
            _ => {}
        }
        if dentro(k.span()) || dentro(v.span()) {
            da_togliere = Some((k.clone(), path));
            break;
        }
    }
    let (k, path) = da_togliere?;
    table.remove(&k);
    Some(path)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: {err}")]
    Parse { path: PathBuf, err: String },
    #[error("registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("{0}")]
    Invalid(String),
}

/// Keys renamed under the naming rule (docs/glossary.md): `[section, old, new]`. The old ones
/// still work, with a warning.
pub const CHIAVI_DEPRECATE: [[&str; 3]; 4] = [
    ["limits", "partner_concorrenza", "partner_concurrency"],
    ["limits", "max_bytes_in_corso", "max_bytes_in_flight"],
    [
        "cliclavoro",
        "scadenze_ogni_secs",
        "expiry_sweep_every_secs",
    ],
    ["wssec", "tolleranza_secs", "clock_skew_secs"],
];

/// The deprecated keys a configuration text uses, each as a warning naming its new name.
pub fn chiavi_deprecate(text: &str) -> Vec<String> {
    let Ok(t) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    CHIAVI_DEPRECATE
        .iter()
        .filter(|[sezione, vecchia, _]| {
            t.get(*sezione)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(*vecchia))
        })
        .map(|[sezione, vecchia, nuova]| {
            format!(
                "[{sezione}] {vecchia} is deprecated: call it {nuova} (the old name still works)"
            )
        })
        .collect()
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Read {
            path: path.to_path_buf(),
            err,
        })?;
        for w in chiavi_deprecate(&text) {
            tracing::warn!(file = %path.display(), "{w}");
        }
        match Config::parse_ogni_problema(&text) {
            (Some(c), problemi) if problemi.is_empty() => Ok(c),
            (_, problemi) => Err(ConfigError::Parse {
                path: path.to_path_buf(),
                err: match problemi.as_slice() {
                    [uno] => uno.to_string(),
                    molti => molti
                        .iter()
                        .fold(format!("{} problems:", molti.len()), |acc, p| {
                            format!("{acc}\n  {p}")
                        }),
                },
            }),
        }
    }

    /// A configuration from TOML text; TOML's error names the key and the line.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// A configuration from TOML text, with every problem of the text rather than the first
    /// serde meets (which is the first in the keys' alphabetical order, not the file's): all
    /// syntax errors; else every unknown key and every value of the wrong type or form, found
    /// by taking the offending key out and reading again, in the order of their lines. The
    /// configuration is the one read with those keys left out (None when the syntax is
    /// broken, or a problem could not be placed on a key).
    pub fn parse_ogni_problema(text: &str) -> (Option<Config>, Vec<ProblemaToml>) {
        use serde::Deserialize as _;
        let (mut root, sintassi) = toml::de::DeTable::parse_recoverable(text);
        let riga = |pos: usize| {
            let fine = pos.min(text.len());
            text.as_bytes()[..fine]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1
        };
        if !sintassi.is_empty() {
            let mut problemi: Vec<ProblemaToml> = sintassi
                .iter()
                .map(|e| ProblemaToml::da(text, e, None))
                .collect();
            problemi.sort_by_key(|p| p.riga.unwrap_or(usize::MAX));
            return (None, problemi);
        }
        let mut problemi = Vec::new();
        // A key under both its old and its new name: serde would blame the whole section.
        for [sezione, vecchia, nuova] in CHIAVI_DEPRECATE {
            if let Some(toml::de::DeValue::Table(t)) =
                root.get_mut().get_mut(sezione).map(|v| v.get_mut())
            {
                if t.contains_key(nuova) {
                    if let Some((k, _)) = t.remove_entry(vecchia) {
                        problemi.push(ProblemaToml {
                            riga: Some(riga(k.span().start)),
                            chiave: Some(format!("{sezione}.{vecchia}")),
                            testo: format!(
                                "{nuova} is given too ({vecchia} is its old name): keep one"
                            ),
                        });
                    }
                }
            }
        }
        let originale = root.get_ref().clone();
        let config = loop {
            match Config::deserialize(toml::de::Deserializer::from(root.clone())) {
                Ok(c) => break Some(c),
                Err(e) => {
                    let chiave = e
                        .span()
                        .and_then(|span| togli_chiave(root.get_mut(), &originale, &span, ""));
                    let trovata = chiave.is_some();
                    problemi.push(ProblemaToml::da(text, &e, chiave));
                    if !trovata {
                        break None;
                    }
                }
            }
        };
        problemi.sort_by_key(|p| p.riga.unwrap_or(usize::MAX));
        (config, problemi)
    }

    /// The prefix of this node's Identificatore serials: `[cluster] numero` as two digits (so
    /// that node 1 and node 10 never write the same serial), else `[soggetto] nodo`.
    pub fn prefisso_id(&self) -> Option<String> {
        self.cluster
            .numero
            .map(|n| format!("{n:02}"))
            .or_else(|| self.soggetto.nodo.clone())
    }

    /// This node's name: `[cluster] node`, else the host name.
    pub fn nome_nodo(&self) -> String {
        self.cluster.node.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "pdd".into())
        })
    }

    /// Our soggetto, with the porta defaulted.
    pub fn own(&self) -> Soggetto {
        let mut s = Soggetto::new(&self.soggetto.tipo, &self.soggetto.nome);
        if !self.soggetto.porta.is_empty() {
            s.porta = self.soggetto.porta.clone();
        }
        s.profilo = self.busta.profilo;
        s.locale = true;
        s
    }

    /// Whether the gateway speaks HTTPS.
    pub fn tls_on(&self) -> bool {
        self.tls.cert.is_some() && self.tls.key.is_some()
    }

    /// Whether outgoing buste are signed.
    pub fn firma_on(&self) -> bool {
        self.wssec.firma.unwrap_or_else(|| self.tls_on())
    }

    /// Checks what serde cannot, and builds the registry (with partners kept in the store).
    pub fn build_registry(&self) -> Result<Registry, ConfigError> {
        self.build_registry_with(&[])
    }

    /// As [`Config::build_registry`], with soggetti added at run time (they win over the file).
    pub fn build_registry_with(&self, dynamic: &[Soggetto]) -> Result<Registry, ConfigError> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "[tls] cert and key go together".into(),
            ));
        }
        if self.wssec.firma == Some(true) && !self.tls_on() {
            return Err(ConfigError::Invalid(
                "[wssec] firma = true needs [tls] cert and key to sign with".into(),
            ));
        }
        if let Some(a) = self.local_listen.filter(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::Invalid(format!(
                "local_listen {a}: the local listener must be on loopback"
            )));
        }
        if let Some(a) = self.api_listen.filter(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::Invalid(format!(
                "api_listen {a}: plain HTTP on loopback only; publish it through a TLS proxy"
            )));
        }
        if !self.tls_on() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "listening on {} without TLS: plain HTTP is for loopback only; set [tls] cert and key (or listen on 127.0.0.1)",
                self.listen
            )));
        }
        if let Some(n) = self.cluster.numero {
            if n > 99 {
                return Err(ConfigError::Invalid(format!(
                    "[cluster] numero must be 0..99, not {n}"
                )));
            }
            if self.soggetto.nodo.is_some() {
                return Err(ConfigError::Invalid(
                    "[cluster] numero and [soggetto] nodo both prefix Identificatori: keep [cluster] numero".into(),
                ));
            }
        }
        if self.store.engine == Engine::Postgres {
            if self.store.url().is_none() {
                return Err(ConfigError::Invalid(
                    "[store] engine = \"postgres\" needs [store] url (or PDD_STORE_URL)".into(),
                ));
            }
            let chiede_tls = self.store.url().is_some_and(|u| {
                [
                    "sslmode=require",
                    "sslmode=verify-ca",
                    "sslmode=verify-full",
                ]
                .iter()
                .any(|m| u.contains(m))
            });
            if chiede_tls && self.store.ca.is_none() {
                return Err(ConfigError::Invalid(
                    "[store] url asks for TLS (sslmode): set [store] ca, the database server's CA (PEM)".into(),
                ));
            }
            if self.cluster.numero.is_none() {
                return Err(ConfigError::Invalid(
                    "[store] engine = \"postgres\" needs [cluster] numero (0..99, unique among the nodes): it keeps the nodes' Identificatori apart".into(),
                ));
            }
        }
        if let Some(n) = &self.soggetto.nodo {
            if n.is_empty() || n.len() > 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::Invalid(format!(
                    "soggetto.nodo must be 1 or 2 digits, not '{n}'"
                )));
            }
        }
        if let Some(d) = &self.porta_delegata.destinatario {
            if Parte::parse(d).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "porta_delegata.destinatario must be TIPO/NOME, not '{d}'"
                )));
            }
        }
        let own = self.own();
        let (mut soggetti, mut servizi) = if self.registry.demo {
            registry::demo(&own)
        } else {
            (vec![own.clone()], Vec::new())
        };
        for s in self.registry.soggetti.iter().chain(dynamic) {
            let mut s = s.clone();
            // A soggetto in the file replaces the demo's (or our own) entry of the same name.
            soggetti.retain(|x| !(x.tipo == s.tipo && x.nome == s.nome));
            if s.porta.is_empty() {
                s.porta = registry::porta_default(&s.tipo, &s.nome);
            }
            // In a file, a certificate may be given as the path of a PEM file.
            if let Some(c) = s
                .cert
                .as_ref()
                .filter(|c| !c.trim_start().starts_with("-----BEGIN"))
            {
                let pem = std::fs::read_to_string(c).map_err(|err| ConfigError::Read {
                    path: PathBuf::from(c),
                    err,
                })?;
                s.cert = Some(pem);
            }
            soggetti.push(s);
        }
        for s in &self.registry.servizi {
            servizi
                .retain(|x| !(x.tipo == s.tipo && x.nome == s.nome && x.erogatore == s.erogatore));
            servizi.push(s.clone());
        }
        Ok(Registry::new(soggetti, servizi)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renamed_keys_still_work_with_a_warning() {
        let vecchio = "[limits]\npartner_concorrenza = 3\nmax_bytes_in_corso = 4096\n[cliclavoro]\nscadenze_ogni_secs = 7\n[wssec]\ntolleranza_secs = 9\n";
        let c = Config::parse(vecchio).unwrap();
        assert_eq!(
            (
                c.limits.partner_concurrency,
                c.limits.max_bytes_in_flight,
                c.cliclavoro.expiry_sweep_every_secs,
                c.wssec.clock_skew_secs
            ),
            (3, 4096, 7, 9)
        );
        let avvisi = chiavi_deprecate(vecchio);
        assert_eq!(avvisi.len(), 4, "{avvisi:?}");
        assert!(avvisi[0].contains("partner_concurrency"), "{avvisi:?}");
        let nuovo = "[limits]\npartner_concurrency = 3\n";
        assert_eq!(Config::parse(nuovo).unwrap().limits.partner_concurrency, 3);
        assert!(chiavi_deprecate(nuovo).is_empty());
    }

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8700");
        assert_eq!(c.own().porta, "MinisteroLavoroSPCoopIT");
        let r = c.build_registry().unwrap();
        assert!(r.soggetto(&Parte::new("SPC", "LAZIO")).is_some());

        let c = Config::parse(
            r#"
listen = "127.0.0.1:9000"
[soggetto]
nome = "EMILIA"
[registry]
demo = false
[[registry.soggetti]]
nome = "MinisteroLavoro"
url = "http://127.0.0.1:8700/pdd/PA"
"#,
        )
        .unwrap();
        let r = c.build_registry().unwrap();
        assert_eq!(r.soggetti().len(), 2);
        assert_eq!(
            r.soggetto(&Parte::new("SPC", "MinisteroLavoro"))
                .unwrap()
                .url
                .as_deref(),
            Some("http://127.0.0.1:8700/pdd/PA")
        );
    }

    #[test]
    fn every_problem_of_a_text_with_its_line() {
        let text =
            "zeta = 1\n[limits]\npartner_concorrenza = 2\npartner_concurrency = 3\nalfa = 4\n";
        let (c, problemi) = Config::parse_ogni_problema(text);
        let visti: Vec<(Option<usize>, Option<&str>)> = problemi
            .iter()
            .map(|p| (p.riga, p.chiave.as_deref()))
            .collect();
        assert_eq!(
            visti,
            [
                (Some(1), Some("zeta")),
                (Some(3), Some("limits.partner_concorrenza")),
                (Some(5), Some("limits.alfa")),
            ],
            "{problemi:?}"
        );
        assert!(problemi[1]
            .testo
            .contains("partner_concurrency is given too"));
        // Read without the keys at fault: the new name's value stands.
        assert_eq!(c.unwrap().limits.partner_concurrency, 3);
        let (c, problemi) = Config::parse_ogni_problema("listen = \"127.0.0.1:9\"\n");
        assert!(problemi.is_empty() && c.is_some());
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::parse("lisen = \"x\"").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let c = Config::parse("[soggetto]\nnodo = \"123\"").unwrap();
        assert!(c.build_registry().is_err());
    }
}
