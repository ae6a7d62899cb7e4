//! `pdd config check`: reads a configuration the way `pdd serve` would and explains every
//! problem, errors (it would not start, or would not work) apart from warnings (it would work,
//! but should be looked at), each with what to do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Check the configuration (--config FILE, or the embedded defaults) and report every
    /// problem in one run, those of the file's text with their line: syntax errors, unknown
    /// keys, values of the wrong type or form; unreadable certificates and keys, a key that does not match its certificate,
    /// certificates expired or expiring within 30 days, partner URLs that are not HTTPS,
    /// listeners in conflict. Exit 0: no errors (warnings are printed); 1: errors; 2: the file
    /// cannot be read.
    Check {
        /// Output: text (the default) or json.
        #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
        json: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Livello {
    Errore,
    Avviso,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problema {
    pub livello: Livello,
    /// Where: a key, a file, a partner.
    pub dove: String,
    /// The line of the file, for a problem of its text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub riga: Option<usize>,
    pub testo: String,
}

/// Days a certificate may have left before it is worth a warning.
const PREAVVISO_GIORNI: i64 = 30;

fn errore(dove: impl Into<String>, testo: impl Into<String>) -> Problema {
    Problema {
        livello: Livello::Errore,
        dove: dove.into(),
        riga: None,
        testo: testo.into(),
    }
}

fn avviso(dove: impl Into<String>, testo: impl Into<String>) -> Problema {
    Problema {
        livello: Livello::Avviso,
        dove: dove.into(),
        riga: None,
        testo: testo.into(),
    }
}

/// Days left on a certificate (negative: expired).
fn giorni_rimasti(c: &openssl::x509::X509Ref) -> Option<i64> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).ok()?;
    let d = now.diff(c.not_after()).ok()?;
    Some(d.days as i64)
}

/// A certificate file: readable PEM, valid now, not about to expire.
fn certificato(dove: &str, path: &Path, out: &mut Vec<Problema>) -> Option<openssl::x509::X509> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            out.push(errore(dove, format!("{}: {e}", path.display())));
            return None;
        }
    };
    let certs = match crate::wssec::pki::leggi_pem(&bytes) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            out.push(errore(
                dove,
                format!("{}: no certificate in it", path.display()),
            ));
            return None;
        }
        Err(e) => {
            out.push(errore(dove, format!("{}: {e}", path.display())));
            return None;
        }
    };
    let c = certs[0].clone();
    scadenza(dove, &c, out);
    Some(c)
}

fn scadenza(dove: &str, c: &openssl::x509::X509Ref, out: &mut Vec<Problema>) {
    match giorni_rimasti(c) {
        Some(g) if g < 0 => out.push(errore(
            dove,
            format!(
                "the certificate expired {} days ago ({})",
                -g,
                c.not_after()
            ),
        )),
        Some(g) if g < PREAVVISO_GIORNI => out.push(avviso(
            dove,
            format!(
                "the certificate expires in {g} days ({}): renew it (pdd certs init --csr)",
                c.not_after()
            ),
        )),
        _ => {}
    }
}

/// A partner or endpoint URL: HTTPS, or plain HTTP on loopback (then a warning).
fn url(dove: &str, u: &str, out: &mut Vec<Problema>) {
    match u.split_once("://") {
        Some(("https", _)) => {}
        Some(("http", rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
            let loopback = host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if loopback {
                out.push(avviso(
                    dove,
                    format!("{u} is plain HTTP (acceptable on loopback only, as here)"),
                ));
            } else {
                out.push(errore(
                    dove,
                    format!(
                        "{u} is not HTTPS: buste would cross the network in clear; use https://"
                    ),
                ));
            }
        }
        _ => out.push(errore(dove, format!("'{u}' is not an http(s) URL"))),
    }
}

/// Every problem of a configuration file (None: the embedded defaults).
pub fn problemi(path: Option<&Path>) -> Result<Vec<Problema>, String> {
    let mut out = Vec::new();
    let config = match path {
        None => Config::default(),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            for w in crate::config::chiavi_deprecate(&text) {
                out.push(avviso(p.display().to_string(), w));
            }
            // Every problem of the text, each on its line; the checks below go on with the
            // configuration read without the keys at fault, when it could be read.
            let (config, problemi) = Config::parse_ogni_problema(&text);
            for e in problemi {
                let chiave = e.chiave.map(|k| format!("{k}: ")).unwrap_or_default();
                out.push(Problema {
                    riga: e.riga,
                    ..errore(p.display().to_string(), format!("{chiave}{}", e.testo))
                });
            }
            match config {
                Some(c) => c,
                None => return Ok(out),
            }
        }
    };
    // What `serve` itself refuses (registry, listeners, cert without key…).
    if let Err(e) = config.build_registry() {
        out.push(errore("configuration", e.to_string()));
    }
    // Listeners on the same address.
    let mut indirizzi = vec![("listen", config.listen)];
    indirizzi.extend(config.local_listen.map(|a| ("local_listen", a)));
    indirizzi.extend(config.api_listen.map(|a| ("api_listen", a)));
    for (i, (n1, a1)) in indirizzi.iter().enumerate() {
        for (n2, a2) in &indirizzi[i + 1..] {
            if a1 == a2 && a1.port() != 0 {
                out.push(errore(
                    format!("{n1}, {n2}"),
                    format!("both listen on {a1}"),
                ));
            }
        }
    }
    // Our key and certificate.
    if let (Some(c), Some(k)) = (&config.tls.cert, &config.tls.key) {
        let cert = certificato("[tls] cert", c, &mut out);
        let key = std::fs::read(k)
            .map_err(|e| format!("{}: {e}", k.display()))
            .and_then(|b| {
                openssl::pkey::PKey::private_key_from_pem(&b)
                    .map_err(|e| format!("{}: not a PEM private key ({e})", k.display()))
            });
        match (&cert, key) {
            (_, Err(e)) => out.push(errore("[tls] key", e)),
            (Some(cert), Ok(key)) => {
                let matches = cert
                    .public_key()
                    .map(|p| p.public_eq(&key))
                    .unwrap_or(false);
                if !matches {
                    out.push(errore(
                        "[tls] key",
                        format!("{} is not the key of {}", k.display(), c.display()),
                    ));
                }
                if config.firma_on() && key.id() != openssl::pkey::Id::RSA {
                    out.push(errore(
                        "[tls] key",
                        "signing buste (RSA-SHA256) needs an RSA key",
                    ));
                }
            }
            (None, Ok(_)) => {}
        }
    }
    for ca in &config.tls.ca {
        certificato("[tls] ca", ca, &mut out);
    }
    // Partners of the file.
    for s in &config.registry.soggetti {
        let dove = format!("partner {}/{}", s.tipo, s.nome);
        if let Some(u) = &s.url {
            url(&dove, u, &mut out);
        }
        if let Some(c) = &s.cert {
            // A path, or the PEM itself.
            if c.contains("-----BEGIN") {
                if let Ok(certs) = crate::wssec::pki::leggi_pem(c.as_bytes()) {
                    if let Some(x) = certs.first() {
                        scadenza(&dove, x, &mut out);
                    }
                }
            } else {
                certificato(&dove, &PathBuf::from(c), &mut out);
            }
        }
    }
    if let Some(u) = &config.cliclavoro.eures_url {
        url("[cliclavoro] eures_url", u, &mut out);
    }
    // The store's directory: creatable and writable.
    let dir = if config.data.exists() {
        config.data.clone()
    } else {
        config
            .data
            .parent()
            .map(Path::to_path_buf)
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."))
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.permissions().readonly() => {
            out.push(errore("data", format!("{} is read-only", dir.display())))
        }
        Ok(_) => {}
        Err(e) => out.push(errore(
            "data",
            format!("{}: {e} (the store cannot be created there)", dir.display()),
        )),
    }
    Ok(out)
}

pub fn config(path: Option<&Path>, c: ConfigCommand) -> Result<ExitCode, String> {
    let ConfigCommand::Check { json } = c;
    let list = match problemi(path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("pdd: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let errori = list.iter().filter(|p| p.livello == Livello::Errore).count();
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else {
        for p in &list {
            let l = match p.livello {
                Livello::Errore => "error",
                Livello::Avviso => "warning",
            };
            match p.riga {
                Some(r) => println!("{l}: {}, line {r}: {}", p.dove, p.testo),
                None => println!("{l}: {}: {}", p.dove, p.testo),
            }
        }
        println!(
            "{}: {errori} error(s), {} warning(s)",
            path.map_or("embedded defaults".into(), |p| p.display().to_string()),
            list.len() - errori
        );
    }
    Ok(if errori > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
