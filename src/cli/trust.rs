//! Trust from the command line: our certificate, partners, signing and verifying messages.

use super::certs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{admin_request, esegui, open_for_reading, Source};
use crate::config::Config;
use crate::egov::{Parte, ProfiloGestione};
use crate::registry::{PoliticaFirma, Soggetto};
use crate::wssec::{dsig, pki};

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Make our RSA-2048 key and a self-signed certificate (or a CSR) in a directory, and print
    /// the certificate's SHA-256 fingerprint (what partners pin).
    Init(CertsInit),
}

#[derive(Args, Debug)]
pub struct CertsInit {
    /// Common name: our soggetto's name (e.g. EMILIA, MinisteroLavoro).
    #[arg(long)]
    pub cn: String,
    /// Where to write `<name>.key` (mode 0600) and `<name>.crt` or `<name>.csr`.
    #[arg(long, default_value = "certs")]
    pub dir: PathBuf,
    /// File name stem.
    #[arg(long, default_value = "pdd")]
    pub name: String,
    /// Write a certificate signing request for a CA instead of a self-signed certificate.
    #[arg(long)]
    pub csr: bool,
    /// Host names and IP addresses the certificate serves (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
    pub san: Vec<String>,
    /// Days of validity.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
    /// Replace an existing key.
    #[arg(long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum PartnerCommand {
    /// Register (or replace) a partner: its porta, URL and certificate.
    Add(PartnerAdd),
    /// The registered soggetti.
    List {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
    /// One soggetto, with its certificate.
    Show {
        /// NOME or TIPO/NOME.
        name: String,
    },
    /// Remove a partner added with `pdd partner add`.
    Remove {
        /// NOME or TIPO/NOME.
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct PartnerAdd {
    /// Party type (SPC for SPCoop).
    #[arg(long, default_value = "SPC")]
    pub tipo: String,
    /// Its name in buste (letters and digits, e.g. EMILIA).
    #[arg(long)]
    pub nome: String,
    /// Identificativo porta (default `<nome>SPCoopIT` for SPC).
    #[arg(long)]
    pub porta: Option<String>,
    /// Its porta applicativa (https://…/pdd/PA).
    #[arg(long)]
    pub url: Option<String>,
    /// Its certificate (PEM): pinned for TLS and for the signatures of its buste.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Services it may call on us (comma separated); none: every service that admits it.
    #[arg(long, value_delimiter = ',')]
    pub servizi: Vec<String>,
    /// Management profile: lineeGuida1.1 or eGov1.1.
    #[arg(long, default_value = "lineeGuida1.1", value_parser = parse_profilo)]
    pub profilo: ProfiloGestione,
    /// Signatures on its buste: required, optional or off (default: the configuration's).
    #[arg(long, value_parser = parse_firma)]
    pub firma: Option<PoliticaFirma>,
}

fn parse_profilo(s: &str) -> Result<ProfiloGestione, String> {
    match s {
        "lineeGuida1.1" => Ok(ProfiloGestione::LineeGuida11),
        "eGov1.1" => Ok(ProfiloGestione::EGov11),
        _ => Err(format!("'{s}': use lineeGuida1.1 or eGov1.1")),
    }
}

fn parse_firma(s: &str) -> Result<PoliticaFirma, String> {
    match s {
        "required" => Ok(PoliticaFirma::Required),
        "optional" => Ok(PoliticaFirma::Optional),
        "off" => Ok(PoliticaFirma::Off),
        _ => Err(format!("'{s}': use required, optional or off")),
    }
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The SOAP message (with its busta).
    pub file: PathBuf,
    /// Our private key (PEM); default: the configuration's [tls] key.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Our certificate (PEM); default: the configuration's [tls] cert.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Sign the whole Intestazione (the default, `[wssec] copertura`).
    #[arg(long, conflicts_with = "intestazione_messaggio")]
    pub intestazione: bool,
    /// Sign only the IntestazioneMessaggio (the narrower form some partners use).
    #[arg(long)]
    pub intestazione_messaggio: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The signed SOAP message.
    pub file: PathBuf,
    /// The certificate the signature must be made with (PEM).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Judge the Timestamp as of this time instead of now: RFC 3339, or local
    /// yyyy-MM-ddTHH:mm:ss or yyyy-MM-dd.
    #[arg(long, value_parser = super::istante)]
    pub now: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// Accept a signature over the whole Intestazione only.
    #[arg(long)]
    pub intestazione: bool,
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        // The mode of an existing file is not changed by open: set it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn certs(c: CertsCommand) -> Result<ExitCode, String> {
    let CertsCommand::Init(a) = c;
    std::fs::create_dir_all(&a.dir).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    let key_path = a.dir.join(format!("{}.key", a.name));
    if key_path.exists() && !a.force {
        return Err(format!(
            "{} exists: use --force to replace it",
            key_path.display()
        ));
    }
    let key = certs::rsa_key().map_err(|e| e.to_string())?;
    write_private(
        &key_path,
        &key.private_key_to_pem_pkcs8().map_err(|e| e.to_string())?,
    )?;
    if a.csr {
        let csr = certs::csr(&a.cn, &key).map_err(|e| e.to_string())?;
        let p = a.dir.join(format!("{}.csr", a.name));
        std::fs::write(&p, csr.to_pem().map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", p.display()))?;
        println!("key:  {} (mode 0600)", key_path.display());
        println!(
            "csr:  {} (CN={}): have it signed by your CA, then set [tls] cert",
            p.display(),
            a.cn
        );
        return Ok(ExitCode::SUCCESS);
    }
    let cert = certs::certificato(
        &certs::Richiesta {
            cn: &a.cn,
            san: &a.san,
            days: a.days,
            from_days: 0,
            uso: certs::Uso::Gateway,
        },
        &key,
        None,
        chrono::Utc::now(),
    )
    .map_err(|e| e.to_string())?;
    let p = a.dir.join(format!("{}.crt", a.name));
    std::fs::write(&p, cert.to_pem().map_err(|e| e.to_string())?)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    println!("key:         {} (mode 0600)", key_path.display());
    println!(
        "certificate: {} (CN={}, valid {} days, SAN {})",
        p.display(),
        a.cn,
        a.days,
        a.san.join(",")
    );
    println!("fingerprint: SHA256 {}", pki::fingerprint(&cert));
    println!(
        "config:      [tls] cert = \"{}\", key = \"{}\"",
        p.display(),
        key_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `NOME` or `TIPO/NOME`.
fn parte(config: &Config, name: &str) -> Result<Parte, String> {
    if let Some(p) = Parte::parse(name) {
        return Ok(p);
    }
    let reg = config.build_registry().map_err(|e| e.to_string())?;
    Ok(reg
        .soggetto_by_nome(name)
        .map(|s| s.parte())
        .unwrap_or_else(|| Parte::new("SPC", name)))
}

pub fn partner(config: Config, c: PartnerCommand) -> Result<ExitCode, String> {
    match c {
        PartnerCommand::Add(a) => {
            let cert = match &a.cert {
                Some(p) => {
                    let bytes = std::fs::read(p)
                        .map_err(|e| format!("cannot read {}: {e}", p.display()))?;
                    let certs =
                        pki::leggi_pem(&bytes).map_err(|e| format!("{}: {e}", p.display()))?;
                    pki::controlla(&certs[0], chrono::Utc::now())
                        .map_err(|e| format!("{}: {e}", p.display()))?;
                    println!(
                        "certificate: CN={} SHA256 {}",
                        pki::cn(&certs[0]).unwrap_or_default(),
                        pki::fingerprint(&certs[0])
                    );
                    Some(
                        String::from_utf8_lossy(&certs[0].to_pem().map_err(|e| e.to_string())?)
                            .into_owned(),
                    )
                }
                None => None,
            };
            let mut s = Soggetto::new(&a.tipo, &a.nome);
            if let Some(p) = a.porta {
                s.porta = p;
            }
            s.url = a.url;
            s.cert = cert;
            s.servizi = a.servizi;
            s.profilo = a.profilo;
            s.firma = a.firma;
            crate::gateway::controlla_partner(&s, chrono::Utc::now()).map_err(|e| e.to_string())?;
            if !config.data.exists() {
                std::fs::create_dir_all(&config.data)
                    .map_err(|e| format!("{}: {e}", config.data.display()))?;
            }
            match open_for_reading(&config)? {
                Source::Store(store) => {
                    let mut partners = esegui(store.partners())?.map_err(|e| e.to_string())?;
                    partners.retain(|p| !(p.tipo == s.tipo && p.nome == s.nome));
                    partners.push(s.clone());
                    config
                        .build_registry_with(&partners)
                        .map_err(|e| e.to_string())?;
                    esegui(async {
                        store.put_partner(&s).await?;
                        store.flush().await
                    })?
                    .map_err(|e| e.to_string())?;
                    println!(
                        "partner {}/{} added (the gateway will use it when started)",
                        s.tipo, s.nome
                    );
                }
                Source::Gateway(addr) => {
                    let body = serde_json::to_string(&s).map_err(|e| e.to_string())?;
                    let (status, answer) =
                        admin_request(addr, "POST", "/admin/partners", Some(&body))?;
                    if status != 200 {
                        return Err(format!(
                            "the gateway refused the partner: {}",
                            error_of(&answer)
                        ));
                    }
                    println!("partner {}/{} added to the running gateway", s.tipo, s.nome);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PartnerCommand::List { json } => {
            let list = partner_list(&config)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{:<24} {:<30} {:<14} {:<9} {:<8} {:<48} URL",
                "SOGGETTO", "PORTA", "PROFILO", "FIRMA", "ORIGINE", "CERTIFICATO"
            );
            for v in &list {
                let s = soggetto_of(v)?;
                let fp = s
                    .cert
                    .as_deref()
                    .and_then(|p| pki::leggi_pem(p.as_bytes()).ok())
                    .map(|c| {
                        let f = pki::fingerprint(&c[0]);
                        format!(
                            "{}… expires {}",
                            &f[..23],
                            pki::not_after(&c[0])
                                .map(|d| d.date_naive().to_string())
                                .unwrap_or_default()
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:<24} {:<30} {:<14} {:<9} {:<8} {:<48} {}",
                    format!("{}/{}", s.tipo, s.nome),
                    s.porta,
                    s.profilo.as_str(),
                    s.firma
                        .map(|f| format!("{f:?}").to_lowercase())
                        .unwrap_or_else(|| "default".into()),
                    v["origine"].as_str().unwrap_or("config"),
                    fp,
                    s.url.as_deref().unwrap_or("-")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PartnerCommand::Show { name } => {
            let p = parte(&config, &name)?;
            let list = partner_list(&config)?;
            let Some(v) = list
                .iter()
                .find(|v| v["tipo"] == p.tipo.as_str() && v["nome"] == p.nome.as_str())
            else {
                eprintln!("pdd: no soggetto {p}");
                return Ok(ExitCode::from(1));
            };
            let s = soggetto_of(v)?;
            println!("soggetto      {}/{}", s.tipo, s.nome);
            println!("porta         {}", s.porta);
            println!("profilo       {}", s.profilo.as_str());
            println!("url           {}", s.url.as_deref().unwrap_or("-"));
            println!(
                "firma         {}",
                s.firma
                    .map(|f| format!("{f:?}").to_lowercase())
                    .unwrap_or_else(|| "default".into())
            );
            println!(
                "servizi       {}",
                if s.servizi.is_empty() {
                    "(every service that admits it)".into()
                } else {
                    s.servizi.join(", ")
                }
            );
            println!(
                "origine       {}",
                v["origine"].as_str().unwrap_or("config")
            );
            match s
                .cert
                .as_deref()
                .and_then(|p| pki::leggi_pem(p.as_bytes()).ok())
            {
                Some(c) => {
                    let c = &c[0];
                    println!("certificato   CN={}", pki::cn(c).unwrap_or_default());
                    println!("  sha256      {}", pki::fingerprint(c));
                    println!(
                        "  valid       {} → {}",
                        pki::not_before(c)
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                        pki::not_after(c).map(|d| d.to_string()).unwrap_or_default()
                    );
                    if let Err(e) = pki::controlla(c, chrono::Utc::now()) {
                        println!("  WARNING     {e}");
                    }
                }
                None => println!("certificato   -"),
            }
            Ok(ExitCode::SUCCESS)
        }
        PartnerCommand::Remove { name } => {
            let p = parte(&config, &name)?;
            let removed = match open_for_reading(&config)? {
                Source::Store(store) => esegui(async {
                    let r = store.remove_partner(&p.tipo, &p.nome).await?;
                    store.flush().await?;
                    Ok::<_, crate::store::StoreError>(r)
                })?
                .map_err(|e| e.to_string())?,
                Source::Gateway(addr) => {
                    let (status, answer) = admin_request(
                        addr,
                        "DELETE",
                        &format!("/admin/partners/{}/{}", p.tipo, p.nome),
                        None,
                    )?;
                    match status {
                        200 => true,
                        404 => false,
                        _ => return Err(format!("the gateway refused: {}", error_of(&answer))),
                    }
                }
            };
            if removed {
                println!("partner {p} removed");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("pdd: {p} was not added with `pdd partner add` (soggetti of the configuration file are changed there)");
                Ok(ExitCode::from(1))
            }
        }
    }
}

fn error_of(answer: &str) -> String {
    serde_json::from_str::<serde_json::Value>(answer)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| answer.trim().to_string())
}

/// A listed soggetto without the `origine` the listing adds.
fn soggetto_of(v: &serde_json::Value) -> Result<Soggetto, String> {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("origine");
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

/// The soggetti of the registry, each with its origin (config or store).
fn partner_list(config: &Config) -> Result<Vec<serde_json::Value>, String> {
    if !config.data.exists() {
        let reg = config.build_registry().map_err(|e| e.to_string())?;
        return Ok(reg
            .soggetti()
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["origine"] = "config".into();
                v
            })
            .collect());
    }
    match open_for_reading(config)? {
        Source::Gateway(addr) => {
            let (status, body) = admin_request(addr, "GET", "/admin/partners", None)?;
            if status != 200 {
                return Err(format!(
                    "the gateway answered HTTP {status}: {}",
                    error_of(&body)
                ));
            }
            serde_json::from_str(&body).map_err(|e| e.to_string())
        }
        Source::Store(store) => {
            let partners = esegui(store.partners())?.map_err(|e| e.to_string())?;
            let reg = config
                .build_registry_with(&partners)
                .map_err(|e| e.to_string())?;
            Ok(reg
                .soggetti()
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    let stored = partners
                        .iter()
                        .any(|p| p.tipo == s.tipo && p.nome == s.nome);
                    v["origine"] = if stored { "store" } else { "config" }.into();
                    v
                })
                .collect())
        }
    }
}

fn our_identity(
    config: &Config,
    key: Option<PathBuf>,
    cert: Option<PathBuf>,
) -> Result<crate::tls::Identity, String> {
    let key = key
        .or_else(|| config.tls.key.clone())
        .ok_or("no key: use --key or set [tls] key")?;
    let cert = cert
        .or_else(|| config.tls.cert.clone())
        .ok_or("no certificate: use --cert or set [tls] cert")?;
    crate::tls::Identity::load(&cert, &key).map_err(|e| e.to_string())
}

pub fn sign(config: Config, a: SignArgs) -> Result<ExitCode, String> {
    let me = our_identity(&config, a.key, a.cert)?;
    let msg = std::fs::read_to_string(&a.file)
        .map_err(|e| format!("cannot read {}: {e}", a.file.display()))?;
    let copertura = if a.intestazione {
        dsig::Copertura::Intestazione
    } else if a.intestazione_messaggio {
        dsig::Copertura::IntestazioneMessaggio
    } else {
        config.wssec.copertura
    };
    match dsig::firma(
        &msg,
        &me.key,
        &me.cert,
        chrono::Utc::now(),
        chrono::Duration::seconds(config.wssec.timestamp_ttl_secs),
        copertura,
    ) {
        Ok(signed) => {
            print!("{signed}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("pdd: {}: {e}", a.file.display());
            Ok(ExitCode::from(1))
        }
    }
}

pub fn verify(config: Config, a: VerifyArgs) -> Result<ExitCode, String> {
    let bytes = match std::fs::read(&a.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("pdd: cannot read {}: {e}", a.file.display());
            return Ok(ExitCode::from(2));
        }
    };
    let env = match crate::soap::Envelope::parse(&bytes, crate::xml::Limits::default()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("pdd: {}: not a SOAP 1.1 message: {e}", a.file.display());
            return Ok(ExitCode::from(2));
        }
    };
    let now = a.now.map_or_else(chrono::Utc::now, |t| t.to_utc());
    let regole = dsig::Regole {
        now,
        tolleranza: chrono::Duration::seconds(config.wssec.clock_skew_secs),
        durata_massima: chrono::Duration::seconds(config.wssec.timestamp_ttl_secs),
        copertura: if a.intestazione {
            dsig::Copertura::Intestazione
        } else {
            dsig::Copertura::IntestazioneMessaggio
        },
    };
    let invalid = |msg: String| {
        println!("{}: INVALID: {msg}", a.file.display());
        Ok(ExitCode::from(1))
    };
    let firmato = match dsig::verifica(env.src, &env, &regole) {
        Ok(f) => f,
        Err(e) => {
            return invalid(format!(
                "{e} [{}]",
                crate::gateway::eccezione_firma(&e).codice
            ))
        }
    };
    let fp = pki::fingerprint(&firmato.cert);
    if let Some(p) = &a.cert {
        let expected = std::fs::read(p)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
            .and_then(|b| pki::leggi_pem(&b).map_err(|e| format!("{}: {e}", p.display())))?;
        if pki::fingerprint(&expected[0]) != fp {
            return invalid(format!(
                "signed with the certificate CN={} ({fp}), not with {}",
                pki::cn(&firmato.cert).unwrap_or_default(),
                p.display()
            ));
        }
    }
    if let Err(e) = pki::controlla(&firmato.cert, now) {
        return invalid(format!("signer's certificate: {e}"));
    }
    println!(
        "{}: valid: Body, busta and Timestamp signed by CN={} (SHA256 {fp}); Timestamp {} → {}",
        a.file.display(),
        pki::cn(&firmato.cert).unwrap_or_default(),
        firmato.created.map(|d| d.to_rfc3339()).unwrap_or_default(),
        firmato
            .expires
            .map(|d| d.to_rfc3339())
            .unwrap_or_else(|| "-".into())
    );
    Ok(ExitCode::SUCCESS)
}
