//! `pdd probe URL`: onboarding a partner without mailing test buste back and forth. A battery of
//! buste built with pdd's own writer — a valid exchange, then deliberately faulty ones — is sent
//! to the partner's porta applicativa, and each answer is judged against what the standard asks
//! (HTTP status, a response or an error busta, the eccezione code, a bare Fault).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::config::Config;
use crate::egov::reader::{self, Lettura};
use crate::egov::{writer, Busta, Ora, Parte, Profilo, Servizio, Tempo};
use crate::wssec::dsig;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// The partner's porta applicativa (http:// on loopback, or https://).
    pub url: String,
    /// The partner's soggetto, TIPO/NOME (the busta's Destinatario).
    #[arg(long)]
    pub destinatario: String,
    /// Our soggetto, TIPO/NOME (default: the configuration's [soggetto]).
    #[arg(long)]
    pub mittente: Option<String>,
    /// The servizio and azione called (a synchronous one: the valid case expects its answer).
    #[arg(long, default_value = "ClicLavoro")]
    pub servizio: String,
    #[arg(long, default_value = "InvioCandidatura")]
    pub azione: String,
    /// The Body's content (default: an InvioCandidatura carrying the sample Candidatura 2.0).
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// Our certificate and key (PEM): presented over mutual TLS, and with --firma the
    /// signature's (default: the configuration's [tls]).
    #[arg(long)]
    pub cert: Option<PathBuf>,
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The CA (or the partner's own certificate) its TLS certificate is checked against.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Sign the buste (WS-Security), and add a case with a broken signature.
    #[arg(long)]
    pub firma: bool,
    /// Output: text (the default) or json.
    #[arg(long = "format", value_name = "text|json", default_value = "text", value_parser = crate::cli::formato_json, action = clap::ArgAction::Set)]
    pub json: bool,
}

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Atteso {
    /// HTTP 200 and a response busta without GRAVE eccezioni.
    Risposta,
    /// An error busta carrying one of these codes, HTTP 500.
    Errore(&'static [u16]),
    /// A bare SOAP Fault (no busta) whose faultstring or faultcode names this.
    Fault(&'static str),
}

/// What came back.
#[derive(Debug, Clone, serde::Serialize)]
struct Esito {
    status: u16,
    busta: bool,
    eccezioni: Vec<String>,
    fault: Option<String>,
}

fn giudica(a: Atteso, e: &Esito) -> bool {
    let gravi = |e: &Esito| e.eccezioni.iter().any(|x| x.ends_with(" GRAVE"));
    match a {
        Atteso::Risposta => e.status == 200 && e.busta && !gravi(e) && e.fault.is_none(),
        Atteso::Errore(codici) => {
            e.status == 500
                && e.busta
                && codici.iter().any(|c| {
                    e.eccezioni
                        .iter()
                        .any(|x| x.starts_with(&format!("EGOV_IT_{c:03} ")))
                })
        }
        Atteso::Fault(nome) => {
            e.status == 500 && !e.busta && e.fault.as_deref().is_some_and(|f| f.contains(nome))
        }
    }
}

fn descrivi(a: Atteso) -> String {
    match a {
        Atteso::Risposta => "HTTP 200, a response busta without GRAVE eccezioni".into(),
        Atteso::Errore(c) => format!(
            "HTTP 500, an error busta with {}",
            c.iter()
                .map(|c| format!("EGOV_IT_{c:03}"))
                .collect::<Vec<_>>()
                .join(" or ")
        ),
        Atteso::Fault(f) => format!("HTTP 500, a bare SOAP Fault {f}"),
    }
}

fn leggi_risposta(status: u16, body: &[u8]) -> Esito {
    let mut e = Esito {
        status,
        busta: false,
        eccezioni: Vec::new(),
        fault: None,
    };
    let Ok(env) = crate::soap::Envelope::parse(body, crate::xml::Limits::default()) else {
        e.fault = Some(format!(
            "not SOAP: {}",
            String::from_utf8_lossy(&body[..body.len().min(120)])
        ));
        return e;
    };
    if let Some(f) = &env.fault {
        e.fault = Some(format!("{} {}", f.code, f.string.trim()));
    }
    if let Lettura::Trovata(t) = reader::leggi(&env.header_blocks) {
        e.busta = true;
        e.eccezioni = t
            .busta
            .eccezioni
            .unwrap_or_default()
            .iter()
            .map(|x| format!("{} {}", x.codice, x.rilevanza.as_str()))
            .collect();
    }
    e
}

fn parte(s: &str) -> Result<Parte, String> {
    let (tipo, nome) = s
        .split_once('/')
        .filter(|(t, n)| !t.is_empty() && !n.is_empty())
        .ok_or_else(|| format!("'{s}': expected TIPO/NOME, e.g. SPC/EMILIA"))?;
    Ok(Parte::new(tipo, nome))
}

/// The TLS of the probe: our certificate presented (when given), the partner's checked
/// against `ca`.
fn tls(a: &ProbeArgs, config: &Config) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &a.ca {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        for c in crate::wssec::pki::leggi_pem(&pem).map_err(|e| e.to_string())? {
            roots
                .add(CertificateDer::from(c.to_der().map_err(|e| e.to_string())?))
                .map_err(|e| e.to_string())?;
        }
    }
    let builder = builder.with_root_certificates(roots);
    let cert = a.cert.clone().or_else(|| config.tls.cert.clone());
    let key = a.key.clone().or_else(|| config.tls.key.clone());
    match (cert, key) {
        (Some(c), Some(k)) => {
            let id = crate::tls::Identity::load(&c, &k).map_err(|e| e.to_string())?;
            let chain = vec![CertificateDer::from(
                id.cert.to_der().map_err(|e| e.to_string())?,
            )];
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                id.key.private_key_to_pkcs8().map_err(|e| e.to_string())?,
            ));
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// A valid busta from `mittente` to `destinatario`, stamped now, with a fresh Identificatore.
fn busta(a: &ProbeArgs, mittente: &Parte, destinatario: &Parte, n: u32) -> Busta {
    let ora = chrono::Local::now().naive_local();
    // Counters of our own, high and per run, so as not to meet the partner's real traffic.
    let seq = 9_000_000 + (std::process::id() % 900) * 1000 + n;
    let id = format!(
        "{}_{}SPCoopIT_{seq:07}_{}",
        mittente.nome,
        mittente.nome,
        ora.format("%Y-%m-%d_%H:%M")
    );
    let ora = Ora {
        ora,
        tempo: Tempo::Spc,
    };
    Busta::richiesta(
        mittente.clone(),
        destinatario.clone(),
        Profilo::Sincrono,
        Servizio {
            tipo: destinatario.tipo.clone(),
            nome: a.servizio.clone(),
        },
        Some(a.azione.clone()),
        id,
        ora,
    )
}

pub fn probe(config: Config, a: ProbeArgs) -> Result<ExitCode, String> {
    let destinatario = parte(&a.destinatario)?;
    let mittente = match &a.mittente {
        Some(m) => parte(m)?,
        None => {
            let own = config.own();
            Parte::new(&own.tipo, &own.nome)
        }
    };
    let corpo = match &a.body {
        Some(f) => std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?,
        None => {
            let op = crate::modulo::ws::operazione("InvioCandidatura").ok_or("no operation")?;
            crate::modulo::ws::richiesta(
                op,
                include_str!("../../examples/moduli/candidatura-2.0.xml"),
            )
        }
    };
    let firmatario = if a.firma {
        let cert = a.cert.clone().or_else(|| config.tls.cert.clone());
        let key = a.key.clone().or_else(|| config.tls.key.clone());
        let (Some(c), Some(k)) = (cert, key) else {
            return Err("--firma needs --cert and --key (or [tls] cert and key)".into());
        };
        Some(crate::tls::Identity::load(&c, &k).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let firma = |msg: String| -> Result<String, String> {
        match &firmatario {
            Some(id) => dsig::firma(
                &msg,
                &id.key,
                &id.cert,
                chrono::Utc::now(),
                chrono::Duration::minutes(5),
                dsig::Copertura::default(),
            )
            .map_err(|e| e.to_string()),
            None => Ok(msg),
        }
    };
    let messaggio = |b: &Busta| crate::soap::envelope(&[&writer::write(b)], &corpo);

    // The cases, built on the valid busta.
    let mut casi: Vec<(&str, &str, Atteso, String)> = Vec::new();
    // Content types other than text/xml, by case (SOAP with Attachments).
    let mut tipi: Vec<(&str, String, bytes::Bytes)> = Vec::new();
    let valida = firma(messaggio(&busta(&a, &mittente, &destinatario, 1)))?;
    casi.push((
        "valid",
        "a valid exchange",
        Atteso::Risposta,
        valida.clone(),
    ));
    casi.push((
        "duplicate",
        "the same busta again (sync)",
        Atteso::Errore(&[110]),
        valida,
    ));
    let mut b = busta(&a, &mittente, &destinatario, 2);
    b.scadenza = Some(chrono::Local::now().naive_local() - chrono::Duration::hours(1));
    casi.push((
        "expired",
        "a Scadenza an hour ago",
        Atteso::Errore(&[301]),
        firma(messaggio(&b))?,
    ));
    let sconosciuto = Parte::new(&mittente.tipo, "SoggettoSconosciutoProbe");
    let b = busta(&a, &sconosciuto, &destinatario, 3);
    casi.push((
        "unknown-mittente",
        "a Mittente the partner does not know",
        Atteso::Errore(&[101, 201]),
        firma(messaggio(&b))?,
    ));
    let b = busta(&a, &mittente, &destinatario, 4);
    let ora = crate::egov::time::format(b.ora_registrazione.map(|o| o.ora).unwrap_or_default());
    let testo = messaggio(&b).replacen(&format!(">{ora}<"), ">Errata<", 1);
    casi.push((
        "bad-date",
        "an OraRegistrazione that is not a date",
        Atteso::Errore(&[108]),
        firma(testo)?,
    ));
    casi.push((
        "no-busta",
        "a SOAP message without the eGov header",
        Atteso::Fault("EGOV_IT_001"),
        crate::soap::envelope(&[], &corpo),
    ));
    casi.push((
        "soap-1.2",
        "a SOAP 1.2 envelope",
        Atteso::Fault("VersionMismatch"),
        format!(
            r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Header>{}</e:Header><e:Body>{corpo}</e:Body></e:Envelope>"#,
            writer::write(&busta(&a, &mittente, &destinatario, 5))
        ),
    ));
    if firmatario.is_some() {
        let firmata = firma(messaggio(&busta(&a, &mittente, &destinatario, 6)))?;
        // The Body changed after signing: its digest no longer matches.
        let alterata = firmata.replacen(
            "</SOAP_ENV:Body>",
            "<x:Aggiunto xmlns:x=\"urn:probe\"/></SOAP_ENV:Body>",
            1,
        );
        casi.push((
            "broken-signature",
            "a signed busta whose Body was changed",
            Atteso::Errore(&[202]),
            alterata,
        ));
    }
    // SOAP with Attachments whose Manifest names a part the message lacks (and leaves out
    // the one it carries).
    {
        let b = busta(&a, &mittente, &destinatario, 7);
        let allegato =
            crate::mime::Parte::nuova("allegato@probe", "text/plain", b"pdd probe".to_vec());
        let (descrizione, mut parti) = crate::egov::manifest::imbusta(
            &corpo,
            &[],
            vec![allegato],
            crate::egov::manifest::Ruolo::Richiesta,
            "corpo@probe",
        );
        parti.pop();
        let descrizione = descrizione.replace("cid:allegato@probe", "cid:assente@probe");
        let msg = firma(crate::soap::envelope(&[&writer::write(&b)], &descrizione))?;
        let m = crate::mime::Corpo::scrivi(&msg, &parti);
        tipi.push(("wrong-manifest", m.content_type, m.corpo));
        casi.push((
            "wrong-manifest",
            "attachments whose Manifest names a part that is missing",
            Atteso::Errore(&[119, 120, 118]),
            msg,
        ));
    }

    let client = crate::server::client::HttpClient::transport(tls(&a, &config)?, 16 << 20);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut righe = Vec::new();
    let mut falliti = 0;
    for (nome, cosa, atteso, msg) in casi {
        let (corpo, intestazioni) = match tipi.iter().find(|(n, _, _)| *n == nome) {
            Some((_, ct, c)) => (c.clone(), vec![("Content-Type".to_string(), ct.clone())]),
            None => (bytes::Bytes::from(msg), Vec::new()),
        };
        let esito = match rt.block_on(client.post_soap(
            &a.url,
            corpo,
            &intestazioni,
            Duration::from_secs(30),
        )) {
            Ok(r) => leggi_risposta(r.status, &r.body),
            Err(e) => {
                if nome == "valid" {
                    return Err(format!("{}: {e}", a.url));
                }
                Esito {
                    status: 0,
                    busta: false,
                    eccezioni: Vec::new(),
                    fault: Some(e.to_string()),
                }
            }
        };
        let ok = giudica(atteso, &esito);
        if !ok {
            falliti += 1;
        }
        righe.push((nome, cosa, atteso, esito, ok));
    }
    if a.json {
        let v: Vec<serde_json::Value> = righe
            .iter()
            .map(|(nome, cosa, atteso, e, ok)| {
                serde_json::json!({
                    "case": nome, "what": cosa, "expected": descrivi(*atteso),
                    "status": e.status, "busta": e.busta, "eccezioni": e.eccezioni,
                    "fault": e.fault, "pass": ok,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "url": a.url, "cases": v, "passed": righe.len() - falliti, "failed": falliti,
            }))
            .unwrap_or_default()
        );
    } else {
        for (nome, cosa, atteso, e, ok) in &righe {
            println!(
                "{} {nome:<18} {cosa}\n     expected: {}\n     got: HTTP {}{}{}{}",
                if *ok { "PASS" } else { "FAIL" },
                descrivi(*atteso),
                e.status,
                if e.busta { ", a busta" } else { "" },
                if e.eccezioni.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", e.eccezioni.join(", "))
                },
                e.fault
                    .as_ref()
                    .map(|f| format!(", Fault {f}"))
                    .unwrap_or_default()
            );
        }
        println!(
            "{} of {} cases as the standard asks",
            righe.len() - falliti,
            righe.len()
        );
    }
    Ok(if falliti == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
