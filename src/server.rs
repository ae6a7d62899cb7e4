//! The HTTP shell (hyper): routes requests to the gateway and writes its answers back.
//!
//! - `POST /pdd/PA`: porta applicativa (partners' buste)
//! - `POST /pdd/PD/{Servizio}/{Azione}`: porta delegata (local systems' plain SOAP)
//! - `GET /health`: liveness and store check

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::egov::{Codice, FAULT_PROCESSAMENTO, FAULT_VALIDAZIONE};
use crate::gateway::diagnostici::{self, Diagnostico, Severita};
use crate::gateway::{Answer, Gateway, RichiestaPd};
use crate::soap::{self, FaultCode};

type Body = Full<Bytes>;

fn respond(a: Answer) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(a.body.clone())));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !a.body.is_empty() {
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/xml; charset=utf-8"),
        );
    }
    for (k, v) in a.headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn fault(status: u16, code: FaultCode, text: &str) -> Response<Body> {
    respond(Answer::soap(
        status,
        soap::envelope(&[], &soap::fault(code, text, None, None)),
    ))
}

fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Reads the whole body, refusing it before reading when Content-Length already says it is too
/// large, and as soon as it grows past the limit otherwise.
async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
) -> Result<Bytes, Response<Body>> {
    let too_large = || {
        fault(
            413,
            FaultCode::Client,
            &format!(
                "{} - il messaggio supera il limite di {max} byte",
                Codice::FORMATO_BUSTA
            ),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    // One buffer, sized by Content-Length when there is one: the body is held once, not as a
    // list of chunks and then again as their contiguous copy.
    let read = async {
        let mut body = Limited::new(req.into_body(), max);
        let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Bytes::from(buf))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(fault(
            400,
            FaultCode::Client,
            &format!("body unreadable: {e}"),
        )),
        Err(_) => Err(fault(408, FaultCode::Client, "body not received in time")),
    }
}

/// The media type of a porta applicativa request, as SOAP 1.1's HTTP binding sees it.
#[derive(Debug, PartialEq)]
enum TipoContenuto {
    /// `text/xml`, whatever its parameters (SOAP 1.1 §6.1.1).
    Soap11,
    /// `application/soap+xml`: SOAP 1.2's.
    Soap12,
    /// Anything else, or none (the value, if any).
    Altro(Option<String>),
}

impl TipoContenuto {
    fn di(req: &Request<Incoming>) -> TipoContenuto {
        let Some(v) = req.headers().get(CONTENT_TYPE) else {
            return TipoContenuto::Altro(None);
        };
        let v = String::from_utf8_lossy(v.as_bytes());
        let media = v.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("text/xml") {
            TipoContenuto::Soap11
        } else if media.eq_ignore_ascii_case("application/soap+xml") {
            TipoContenuto::Soap12
        } else {
            TipoContenuto::Altro(Some(v.chars().take(100).collect()))
        }
    }
}

/// Whether a body sent as application/soap+xml is a SOAP 1.2 envelope (the parser stops at the
/// root element).
fn soap12(body: &[u8], gw: &Gateway) -> bool {
    matches!(
        soap::Envelope::parse(body, gw.limits),
        Err(soap::SoapError::Soap12)
    )
}

/// The answer to a porta applicativa request that is not SOAP 1.1 by its Content-Type (none,
/// application/json, multipart/related…): HTTP 415 (WS-I Basic Profile 1.1 R1115) with a
/// `soap:Client` Fault EGOV_IT_001 saying what is expected, before the body is read. GovWay
/// refuses these too (ContentTypeNotSupported, ContentTypeNotProvided); SOAP with Attachments
/// is not supported.
fn non_soap11(ct: Option<&str>, peer: &SocketAddr) -> Response<Body> {
    let ricevuto = match ct {
        Some(ct) => format!("Content-Type '{ct}' non supportato"),
        None => "Content-Type assente".to_string(),
    };
    info!(%peer, content_type = ct.unwrap_or(""), "porta applicativa: not SOAP 1.1 by its Content-Type: 415");
    let motivo = format!(
        "<pdd:ContentType xmlns:pdd=\"urn:pdd:http\">{}: la busta e-Gov viaggia in SOAP 1.1, Content-Type text/xml</pdd:ContentType>",
        crate::xml::escape_text(&ricevuto)
    );
    respond(Answer::soap(
        415,
        soap::envelope(
            &[],
            &soap::fault(FaultCode::Client, FAULT_VALIDAZIONE, None, Some(&motivo)),
        ),
    ))
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client certificate presented in the TLS handshake (verified by then).
    pub cert: Option<openssl::x509::X509>,
    /// Reached through the local listener (porta delegata, /admin and /health only).
    pub locale: bool,
    /// Reached through the read API's own listener (`api_listen`: /api and /health only).
    pub solo_api: bool,
}

async fn handle(
    gw: Arc<Gateway>,
    req: Request<Incoming>,
    peer_info: Arc<Peer>,
) -> Result<Response<Body>, Infallible> {
    let peer = peer_info.addr;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    debug!(%method, %path, %peer, "request");
    let max = gw.config.limits.max_body_bytes;
    let timeout = Duration::from_secs(gw.config.limits.request_timeout_secs);
    let not_here = peer_info.locale
        && !(path.starts_with("/admin/")
            || path.starts_with("/pdd/PD/")
            || path.starts_with("/api/")
            || path == "/health"
            || path == "/metrics");
    // Over TLS the main listener is the partners': our porta delegata there would let a partner
    // send buste in our name, so it and /admin live on the local listener only.
    let partners_only = gw.config.tls_on()
        && !peer_info.locale
        && (path.starts_with("/admin/") || path.starts_with("/pdd/PD/"));
    let resp = match (method, path.as_str()) {
        _ if peer_info.solo_api && !(path.starts_with("/api/") || path == "/health") => plain(
            StatusCode::NOT_FOUND,
            "this listener serves the read API (GET /api/candidature, /api/vacancies) and /health\n",
        ),
        _ if not_here => plain(
            StatusCode::NOT_FOUND,
            "this local listener serves the porta delegata (/pdd/PD/...), /api, /admin and /health; partners use the TLS listener\n",
        ),
        _ if partners_only => plain(
            StatusCode::NOT_FOUND,
            "this TLS listener serves partners (POST /pdd/PA), /api and /health; the porta delegata and /admin answer on the local listener (local_listen)\n",
        ),
        (Method::POST, "/pdd/PA") | (Method::POST, "/pdd/PA/") => {
            // Before the body is read: a flood costs its sender, not the others.
            let partner = chi_e(&gw, &peer_info);
            let Some(_posto) = gw
                .in_corso
                .entra(&partner, gw.config.limits.partner_concorrenza)
            else {
                return Ok(troppe(&partner, gw.config.limits.partner_concorrenza));
            };
            let tipo = TipoContenuto::di(&req);
            if let TipoContenuto::Altro(ct) = &tipo {
                return Ok(non_soap11(ct.as_deref(), &peer));
            }
            // Room for the body among all bodies in progress: its Content-Length, or the most
            // a chunked body may grow to.
            let dichiarati = req
                .headers()
                .get(hyper::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
                .map_or(max, |n| n.min(max));
            let kib = u32::try_from(dichiarati.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
            let header_timeout = Duration::from_secs(gw.config.limits.header_timeout_secs);
            let Ok(Ok(_spazio)) =
                tokio::time::timeout(header_timeout, gw.memoria.acquire_many(kib)).await
            else {
                return Ok(senza_spazio(dichiarati));
            };
            match read_body(req, max, timeout).await {
                // application/soap+xml is SOAP 1.2's: its envelope gets the VersionMismatch
                // Fault (from the gateway), a SOAP 1.1 envelope under it is refused.
                Ok(body) if tipo == TipoContenuto::Soap12 && !soap12(&body, &gw) => {
                    non_soap11(Some("application/soap+xml"), &peer)
                }
                Ok(body) => respond(gw.porta_applicativa(&body, &peer_info).await),
                Err(r) => r,
            }
        }
        (Method::POST, p) if p.starts_with("/pdd/PD/") => {
            let rest = &p["/pdd/PD/".len()..];
            let mut parts = rest.trim_end_matches('/').splitn(2, '/');
            let servizio = parts.next().unwrap_or("").to_string();
            let azione = parts.next().map(str::to_string);
            let destinatario = req
                .headers()
                .get("X-PDD-Destinatario")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if servizio.is_empty() || azione.as_deref().is_some_and(|a| a.contains('/')) {
                fault(404, FaultCode::Client, "use /pdd/PD/{Servizio}/{Azione}")
            } else {
                match read_body(req, max, timeout).await {
                    Ok(body) => respond(
                        gw.porta_delegata(RichiestaPd {
                            servizio,
                            azione,
                            destinatario,
                            body: &body,
                            peer: Some(peer.to_string()),
                            fisso: None,
                        })
                        .await,
                    ),
                    Err(r) => r,
                }
            }
        }
        (m, p) if p.starts_with("/admin/") => {
            if peer.ip().is_loopback() {
                let query = req.uri().query().map(str::to_string);
                let p = p.to_string();
                match read_body(req, max, timeout).await {
                    Ok(body) => admin(&gw, &m, &p, query.as_deref(), &body).await,
                    Err(r) => r,
                }
            } else {
                plain(
                    StatusCode::FORBIDDEN,
                    "the admin endpoints answer on loopback only\n",
                )
            }
        }
        // Metrics: for the operators' scraper, on loopback (the local listener, or the main one
        // when it is plain HTTP), never to partners over TLS.
        (Method::GET, "/metrics") if peer.ip().is_loopback() && (peer_info.locale || !gw.config.tls_on()) => {
            let mut r = Response::new(Full::new(Bytes::from(gw.prometheus().await)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        (Method::GET, "/api/candidature") | (Method::GET, "/api/vacancies") => {
            let t = if path == "/api/candidature" {
                crate::modulo::Tipo::Candidatura
            } else {
                crate::modulo::Tipo::Vacancy
            };
            api(&gw, &req, &peer_info, t).await
        }
        (_, "/api/candidature") | (_, "/api/vacancies") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: use GET\n")
        }
        // Healthy when the store reads and makes writes durable (a flush with nothing new is
        // cheap): what an orchestrator needs to know before sending traffic.
        (Method::GET, "/health") => {
            let check = match gw.store.recent(1).await {
                Ok(_) => gw.store.flush().await,
                Err(e) => Err(e),
            };
            match check {
                Ok(()) => plain(StatusCode::OK, "ok\n"),
                Err(e) => plain(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}\n")),
            }
        }
        // RFC 9110 §15.5.6: a 405 says what is allowed.
        (_, "/pdd/PA") | (_, "/pdd/PA/") => {
            let mut r = plain(
                StatusCode::METHOD_NOT_ALLOWED,
                "porta applicativa: POST a SOAP 1.1 message with a busta e-Gov header\n",
            );
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
        (_, "/health") => {
            plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: POST /pdd/PA, POST /pdd/PD/{Servizio}/{Azione}, GET /api/candidature, GET /api/vacancies, GET /health\n",
        ),
    };
    Ok(resp)
}

/// Who a porta applicativa request comes from, for the per-partner limit: the soggetto of its
/// TLS certificate, else its address.
fn chi_e(gw: &Gateway, peer: &Peer) -> String {
    peer.cert
        .as_ref()
        .and_then(|c| gw.trust.get().soggetto(c, &gw.registry()))
        .map(|p| p.to_string())
        .unwrap_or_else(|| peer.addr.ip().to_string())
}

/// The answer to a partner over its limit.
fn troppe(partner: &str, limite: usize) -> Response<Body> {
    warn!(
        partner,
        limite, "too many exchanges in progress from one partner: refused"
    );
    occupato(&format!(
        "troppi scambi in corso da {partner} (al più {limite} alla volta): riprovare"
    ))
}

/// The answer when the bodies in progress leave no room for this one.
fn senza_spazio(byte: usize) -> Response<Body> {
    warn!(
        bytes = byte,
        "no room for another request body (limits.max_bytes_in_corso): refused"
    );
    occupato(&format!(
        "troppi messaggi in corso: nessuno spazio per altri {byte} byte ora (limits.max_bytes_in_corso): riprovare"
    ))
}

/// 503 with `Retry-After: 1` and a Fault whose detail says why.
fn occupato(motivo: &str) -> Response<Body> {
    let detail = format!(
        "<pdd:Limite xmlns:pdd=\"urn:pdd:limiti\">{}</pdd:Limite>",
        crate::xml::escape_text(motivo)
    );
    let body = soap::envelope(
        &[],
        &soap::fault(FaultCode::Server, FAULT_PROCESSAMENTO, None, Some(&detail)),
    );
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r.headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// The read API: anonymous, or registered (a partner's client certificate, or a user's token).
async fn api(
    gw: &Gateway,
    req: &Request<Incoming>,
    peer: &Peer,
    t: crate::modulo::Tipo,
) -> Response<Body> {
    let errore =
        |status: StatusCode, msg: String| json(status, &serde_json::json!({ "errore": msg }));
    let partner = peer
        .cert
        .as_ref()
        .is_some_and(|c| gw.trust.get().soggetto(c, &gw.registry()).is_some());
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("").trim().to_string());
    let registrato = match token {
        _ if partner => true,
        None => false,
        Some(h) => {
            let non_autorizzato = |msg: &str| {
                let mut r = errore(StatusCode::UNAUTHORIZED, msg.to_string());
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"pdd\""),
                );
                r
            };
            // The scheme is case-insensitive (RFC 9110 §11.1).
            let tok = h
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
                .filter(|t| !t.is_empty());
            let Some(tok) = tok else {
                return non_autorizzato("Authorization: usare 'Bearer <token>' (pdd users add)");
            };
            match gw.token_valido(tok).await {
                Ok(true) => true,
                Ok(false) => return non_autorizzato("token non valido"),
                Err(e) => return errore(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    };
    match gw.pubblicati(t, req.uri().query(), registrato).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err((status, msg)) => errore(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            msg,
        ),
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The CLI's way into a running gateway (loopback only):
/// `GET /admin/exchanges?limit=N`, `GET /admin/exchanges?since=T&until=T` (received in
/// `[since, until)`, oldest first; T in ms since the epoch or RFC 3339),
/// `GET /admin/exchanges/{Identificatore or seq}`,
/// `GET /admin/diagnostici[?since=T&until=T&severity=LEVEL&limit=N]`,
/// `GET /admin/partners`, `POST /admin/partners` (a soggetto as JSON), `DELETE /admin/partners/{TIPO}/{NOME}`.
async fn admin(
    gw: &Gateway,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<Body> {
    if path == "/admin/partners" || path.starts_with("/admin/partners/") {
        return admin_partners(gw, method, path, body).await;
    }
    if let Some(r) = admin_rete(gw, method, path, query, body).await {
        return r;
    }
    // `pdd store`: backup, stats, check, purge.
    if let Some((status, v)) = gw.admin_store(method, path, body).await {
        return json(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &v,
        );
    }
    if method != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let err = |e: crate::store::StoreError| {
        json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({ "error": e.to_string() }),
        )
    };
    if path == "/admin/diagnostici" {
        let f = diagnostici::Filtro {
            dal: parametro(query, "since").and_then(|v| istante_ms(&v)),
            al: parametro(query, "until").and_then(|v| istante_ms(&v)),
            soglia: parametro(query, "severity").and_then(|v| Severita::parse(&v)),
            limite: parametro(query, "limit").and_then(|v| v.parse().ok()),
        };
        return match diagnostici::elenca(gw.store.as_ref(), &f).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::Value::Array(list.iter().map(|d| d.json()).collect()),
            ),
            Err(e) => err(e),
        };
    }
    let (since, until) = (parametro(query, "since"), parametro(query, "until"));
    if path == "/admin/exchanges" && (since.is_some() || until.is_some()) {
        let (dal, al) = (
            since.as_deref().and_then(istante_ms),
            until.as_deref().and_then(istante_ms),
        );
        if since.is_some() != dal.is_some() || until.is_some() != al.is_some() {
            return json(
                StatusCode::BAD_REQUEST,
                &serde_json::json!({ "error": "since, until: ms since the epoch or RFC 3339" }),
            );
        }
        return match gw.store.exchanges_between(dal, al).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::to_value(list).unwrap_or_default(),
            ),
            Err(e) => err(e),
        };
    }
    if path == "/admin/exchanges" {
        let limit = query
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("limit=")))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .min(10_000);
        return match gw.store.recent(limit).await {
            Ok(list) => json(
                StatusCode::OK,
                &serde_json::to_value(list).unwrap_or_default(),
            ),
            Err(e) => err(e),
        };
    }
    if let Some(id) = path.strip_prefix("/admin/exchanges/") {
        let id = percent_decode(id);
        let found = match gw.store.exchange_by_id(&id).await {
            Ok(Some(e)) => Ok(Some(e)),
            Ok(None) => match id.parse::<u64>() {
                Ok(seq) => gw.store.exchange(seq).await,
                Err(_) => Ok(None),
            },
            Err(e) => Err(e),
        };
        return match found {
            Ok(Some(e)) => json(StatusCode::OK, &e.to_json_full()),
            Ok(None) => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": format!("no exchange '{id}'") }),
            ),
            Err(e) => err(e),
        };
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// A query parameter, percent-decoded.
fn parametro(query: Option<&str>, nome: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == nome).then(|| percent_decode(v))
    })
}

/// An instant as ms since the epoch: a number of ms, or RFC 3339.
fn istante_ms(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// The network's admin endpoints: `GET /admin/outbox`, `POST /admin/outbox/retry[?seq=N]`,
/// `GET /admin/eures`, `GET /admin/contatti`, `GET|POST /admin/users`, `DELETE /admin/users/{NOME}`,
/// `POST /admin/rapporti` (JSON `[[cf, rapporto], …]`), `POST /admin/scadenze` (sweep now),
/// `POST /admin/clock` (`{"offset_secs": N}`, only with `PDD_TEST_CLOCK=1`).
async fn admin_rete(
    gw: &Gateway,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Response<Body>> {
    let ok = |v: serde_json::Value| json(StatusCode::OK, &v);
    let bad = |status: StatusCode, msg: String| json(status, &serde_json::json!({ "error": msg }));
    let store_err =
        |e: crate::store::StoreError| bad(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let to_json = |v: Result<serde_json::Value, crate::store::StoreError>| match v {
        Ok(v) => ok(v),
        Err(e) => store_err(e),
    };
    let param = |name: &str| {
        query.and_then(|q| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
                .map(str::to_string)
        })
    };
    Some(match (method, path) {
        (&Method::GET, "/admin/outbox") => to_json(
            gw.outbox()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::POST, "/admin/outbox/retry") => {
            let seq = match param("seq").map(|s| s.parse::<u64>()) {
                Some(Ok(n)) => Some(n),
                Some(Err(_)) => return Some(bad(StatusCode::BAD_REQUEST, "seq: a number".into())),
                None => None,
            };
            to_json(
                gw.outbox_riprova(seq)
                    .await
                    .map(|n| serde_json::json!({ "requeued": n })),
            )
        }
        (&Method::GET, "/admin/eures") => to_json(
            gw.eures()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, "/admin/contatti") => to_json(
            gw.contatti()
                .await
                .map(|l| serde_json::to_value(l).unwrap_or_default()),
        ),
        (&Method::GET, "/admin/users") => to_json(gw.utenti().await.map(|l| {
            serde_json::Value::Array(
                l.iter()
                    .map(|u| serde_json::json!({ "nome": u.nome, "creato": u.creato }))
                    .collect(),
            )
        })),
        (&Method::POST, "/admin/users") => {
            let nome = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["nome"].as_str().map(str::to_string))
                .unwrap_or_default();
            match gw.aggiungi_utente(&nome).await {
                Ok(token) => ok(serde_json::json!({ "nome": nome, "token": token })),
                Err((s, m)) => bad(
                    StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST),
                    m,
                ),
            }
        }
        (&Method::DELETE, p) if p.starts_with("/admin/users/") => {
            let nome = percent_decode(&p["/admin/users/".len()..]);
            match gw.rimuovi_utente(&nome).await {
                Ok(true) => ok(serde_json::json!({ "removed": nome })),
                Ok(false) => bad(StatusCode::NOT_FOUND, format!("no user '{nome}'")),
                Err(e) => store_err(e),
            }
        }
        (&Method::POST, "/admin/rapporti") => {
            match serde_json::from_slice::<Vec<(String, crate::modulo::rapporto::Rapporto)>>(body) {
                Ok(righe) => to_json(
                    gw.importa_rapporti(&righe)
                        .await
                        .map(|n| serde_json::json!({ "stored": n })),
                ),
                Err(e) => bad(StatusCode::BAD_REQUEST, format!("rapporti: {e}")),
            }
        }
        (&Method::POST, "/admin/scadenze") => to_json(
            gw.disattiva_scaduti()
                .await
                .map(|n| serde_json::json!({ "deactivated": n })),
        ),
        (&Method::POST, "/admin/clock") => match &gw.orologio_regolabile {
            None => bad(
                StatusCode::FORBIDDEN,
                "the clock is fixed (start with PDD_TEST_CLOCK=1 to move it in tests)".into(),
            ),
            Some(c) => match serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["offset_secs"].as_i64())
            {
                Some(secs) => {
                    c.set_offset_secs(secs);
                    tracing::warn!(offset_secs = secs, "test clock moved");
                    ok(serde_json::json!({ "offset_secs": secs, "now": gw.now().to_rfc3339() }))
                }
                None => bad(StatusCode::BAD_REQUEST, "{\"offset_secs\": N}".into()),
            },
        },
        _ => return None,
    })
}

async fn admin_partners(gw: &Gateway, method: &Method, path: &str, body: &[u8]) -> Response<Body> {
    let bad = |status: StatusCode, msg: String| json(status, &serde_json::json!({ "error": msg }));
    match *method {
        Method::GET => {
            let reg = gw.registry();
            let stored: Vec<String> = gw
                .store
                .partners()
                .await
                .unwrap_or_default()
                .iter()
                .map(|s| format!("{}/{}", s.tipo, s.nome))
                .collect();
            let list: Vec<serde_json::Value> = reg
                .soggetti()
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    v["origine"] = serde_json::Value::String(
                        if stored.contains(&format!("{}/{}", s.tipo, s.nome)) {
                            "store"
                        } else {
                            "config"
                        }
                        .into(),
                    );
                    v
                })
                .collect();
            json(StatusCode::OK, &serde_json::Value::Array(list))
        }
        Method::POST => {
            let s: crate::registry::Soggetto = match serde_json::from_slice(body) {
                Ok(s) => s,
                Err(e) => return bad(StatusCode::BAD_REQUEST, format!("soggetto non valido: {e}")),
            };
            match gw.aggiungi_partner(s).await {
                Ok(()) => json(StatusCode::OK, &serde_json::json!({ "ok": true })),
                Err(e) => bad(StatusCode::BAD_REQUEST, e),
            }
        }
        Method::DELETE => {
            let name = percent_decode(path.trim_start_matches("/admin/partners/"));
            let Some((tipo, nome)) = name.split_once('/') else {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "use /admin/partners/{TIPO}/{NOME}".into(),
                );
            };
            match gw.rimuovi_partner(tipo, nome).await {
                Ok(true) => json(StatusCode::OK, &serde_json::json!({ "ok": true })),
                Ok(false) => bad(
                    StatusCode::NOT_FOUND,
                    format!("{tipo}/{nome} non è un partner aggiunto con pdd partner add"),
                ),
                Err(e) => bad(StatusCode::BAD_REQUEST, e),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
    }
}

/// Decodes %XX escapes (an Identificatore's `:` may arrive as %3A).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves until `shutdown` resolves, then lets in-flight exchanges finish (up to the grace
/// period) and flushes the store. `admin`, when given, is a plain-HTTP loopback listener for
/// local systems (the porta delegata), the CLI (/admin) and health checks, used when the main
/// listener speaks TLS with client certificates.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let header_timeout = Duration::from_secs(gw.config.limits.header_timeout_secs);
    let acceptor = match gw.server_tls() {
        Ok(Some(cfg)) => Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))),
        Ok(None) => None,
        Err(e) => return Err(std::io::Error::other(e)),
    };
    tokio::pin!(shutdown);
    // Background work: the outbox's deliveries, the validity sweeper, retention.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    {
        let own = gw.config.own();
        gw.diagnostica(Diagnostico::new(
            Severita::InfoIntegration,
            "Avvio",
            "PDD_AVVIO",
            format!(
                "pdd {} avviato: soggetto {}/{}, porta {}",
                env!("CARGO_PKG_VERSION"),
                own.tipo,
                own.nome,
                own.porta
            ),
        ))
        .await;
    }
    let workers = [
        tokio::spawn(crate::gateway::outbox::worker(
            gw.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::scadenze::worker(
            gw.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::conservazione::worker(
            gw.clone(),
            stop(stop_rx.clone()),
        )),
    ];
    // The read API alone, for a portal or a proxy that must not reach the porta delegata.
    let api = match gw.config.api_listen {
        Some(a) => {
            let l = TcpListener::bind(a).await?;
            info!(api = %l.local_addr()?, "read API (/api/candidature, /api/vacancies) on its own listener");
            Some(l)
        }
        None => None,
    };
    loop {
        let admin_accept = async {
            match &admin {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        let api_accept = async {
            match &api {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let gw = gw.clone();
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve_io(stream, gw, Arc::new(Peer { addr, cert: None, locale: false, solo_api: false }), watcher, header_timeout).await,
                        Some(acc) => match tokio::time::timeout(header_timeout, acc.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let cert = tls
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(|d| openssl::x509::X509::from_der(d).ok());
                                serve_io(tls, gw, Arc::new(Peer { addr, cert, locale: false, solo_api: false }), watcher, header_timeout).await
                            }
                            Ok(Err(e)) => info!(peer = %addr, error = %e, "TLS handshake refused"),
                            Err(_) => info!(peer = %addr, "TLS handshake not completed in time"),
                        },
                    }
                });
            }
            accepted = admin_accept => {
                if let Ok((stream, addr)) = accepted {
                    let gw = gw.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(serve_io(stream, gw, Arc::new(Peer { addr, cert: None, locale: true, solo_api: false }), watcher, header_timeout));
                }
            }
            accepted = api_accept => {
                if let Ok((stream, addr)) = accepted {
                    let gw = gw.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(serve_io(stream, gw, Arc::new(Peer { addr, cert: None, locale: false, solo_api: true }), watcher, header_timeout));
                }
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    drop(admin);
    drop(api);
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(gw.config.limits.shutdown_grace_secs);
    info!(
        in_flight = graceful.count(),
        "shutting down: finishing in-flight exchanges"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("grace period over: closing remaining connections");
    }
    for w in workers {
        let _ = tokio::time::timeout(grace, w).await;
    }
    gw.diagnostica(Diagnostico::new(
        Severita::InfoIntegration,
        "Avvio",
        "PDD_ARRESTO",
        "pdd arrestato",
    ))
    .await;
    if let Err(e) = gw.store.flush().await {
        warn!(error = %e, "final store flush failed");
    }
    info!("stopped");
    Ok(())
}

/// Serves HTTP/1.1 on one connection (plain or TLS), watched for graceful shutdown.
async fn serve_io<I>(
    io: I,
    gw: Arc<Gateway>,
    peer: Arc<Peer>,
    watcher: hyper_util::server::graceful::Watcher,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(true);
    let addr = peer.addr;
    let conn = builder.serve_connection(
        TokioIo::new(io),
        service_fn(move |req| handle(gw.clone(), req, peer.clone())),
    );
    if let Err(e) = watcher.watch(conn).await {
        debug!(peer = %addr, error = %e, "connection closed with error");
    }
}

/// A fault for errors that happen before the gateway could even look at the message.
pub fn processing_fault() -> String {
    soap::envelope(
        &[],
        &soap::fault(FaultCode::Server, FAULT_PROCESSAMENTO, None, None),
    )
}
