//! Routing: which part of the gateway a request goes to, and the checks made before a body is
//! read (listener, per-partner limit, media type, room for the body).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tracing::{debug, info, warn};

use super::{json, plain, respond, Body};
use crate::gateway::limits::Negato;
use crate::gateway::{Gateway, HttpRefusal, Listener, Peer, RichiestaPd};
use crate::soap;

/// How slow a body may arrive: at least `minimo` bytes a second on average, once `dopo` has
/// passed since its headers (0: no minimum).
#[derive(Clone, Copy)]
pub(super) struct Ritmo {
    pub minimo: u64,
    pub dopo: Duration,
}

/// Reads the whole body, refusing it before reading when Content-Length already says it is too
/// large, and as soon as it grows past the limit otherwise; cut with 408 when it arrives slower
/// than `ritmo` or is not whole within `timeout`.
pub(super) async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
    ritmo: Ritmo,
) -> Result<Bytes, Response<Body>> {
    let too_large = || rifiuta(HttpRefusal::TooLarge { max });
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
    let inizio = tokio::time::Instant::now();
    let read = async {
        let mut body = Limited::new(req.into_body(), max);
        let mut buf = Vec::with_capacity(declared.unwrap_or(0) as usize);
        // Checked twice a second, also while nothing arrives.
        let mut controllo = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                frame = body.frame() => match frame {
                    Some(frame) => {
                        if let Ok(data) = frame?.into_data() {
                            buf.extend_from_slice(&data);
                        }
                    }
                    None => break,
                },
                _ = controllo.tick() => {
                    let t = inizio.elapsed();
                    if ritmo.minimo > 0
                        && t > ritmo.dopo
                        && (buf.len() as f64) < ritmo.minimo as f64 * t.as_secs_f64()
                    {
                        return Err(Box::new(Lento) as Box<dyn std::error::Error + Send + Sync>);
                    }
                }
            }
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(Bytes::from(buf))
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) if e.is::<Lento>() => {
            warn!(
                min_body_rate = ritmo.minimo,
                "request body slower than the minimum rate: cut with 408"
            );
            Err(rifiuta(HttpRefusal::TooSlowRate { min: ritmo.minimo }))
        }
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large())
        }
        Ok(Err(e)) => Err(rifiuta(HttpRefusal::Unreadable(e.to_string()))),
        Err(_) => Err(rifiuta(HttpRefusal::TooSlow)),
    }
}

/// A body slower than the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("body slower than the minimum rate")]
struct Lento;

/// The Content-Type, if any and readable.
fn content_type_di(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get(CONTENT_TYPE)?
        .to_str()
        .ok()
        .map(str::to_string)
}

/// The media type of a porta applicativa request, as SOAP 1.1's HTTP binding sees it.
#[derive(Debug, PartialEq)]
enum TipoContenuto {
    /// `text/xml`, whatever its parameters (SOAP 1.1 §6.1.1).
    Soap11,
    /// `application/soap+xml`: SOAP 1.2's.
    Soap12,
    /// `multipart/related`: SOAP with Attachments (its root part SOAP 1.1).
    Allegati,
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
        } else if media.eq_ignore_ascii_case("multipart/related") {
            TipoContenuto::Allegati
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
/// application/json…): HTTP 415 (WS-I Basic Profile 1.1 R1115) with a
/// `soap:Client` Fault EGOV_IT_001 saying what is expected, before the body is read. GovWay
/// refuses these too (ContentTypeNotSupported, ContentTypeNotProvided). SOAP with Attachments
/// (`multipart/related`) is read.
fn non_soap11(ct: Option<&str>, peer: &SocketAddr) -> Response<Body> {
    info!(%peer, content_type = ct.unwrap_or(""), "porta applicativa: not SOAP 1.1 by its Content-Type: 415");
    rifiuta(HttpRefusal::NotSoap11 {
        content_type: ct.map(str::to_string),
    })
}

/// The answer to a request refused before the gateway reads it.
fn rifiuta(r: HttpRefusal) -> Response<Body> {
    respond(r.answer())
}

pub(super) async fn handle(
    gw: Arc<Gateway>,
    console: Arc<super::console::Console>,
    req: Request<Incoming>,
    peer_info: Arc<Peer>,
) -> Result<Response<Body>, Infallible> {
    let peer = peer_info.addr;
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    debug!(%method, %path, %peer, "request");
    let max = gw.config.limits.max_body_bytes;
    let timeout = Duration::from_secs(gw.config.limits.request_timeout_secs);
    let ritmo = Ritmo {
        minimo: gw.config.limits.min_body_rate,
        dopo: Duration::from_secs(gw.config.limits.min_body_rate_after_secs),
    };
    if path == "/console" || path.starts_with("/console/") {
        // Boxed, as every branch but the porta applicativa's: hyper keeps room for this
        // function's future with each connection for as long as it is open, sized for its
        // largest branch.
        return Ok(Box::pin(pannello(&gw, &console, req, &peer_info)).await);
    }
    let not_here = (peer_info.listener == Listener::Local)
        && !(path.starts_with("/admin/")
            || path.starts_with("/pdd/PD/")
            || path.starts_with("/api/")
            || path == "/health"
            || path == "/metrics");
    // Over TLS the main listener is the partners': our porta delegata there would let a partner
    // send buste in our name, so it and /admin live on the local listener only.
    let partners_only = gw.config.tls_on()
        && !(peer_info.listener == Listener::Local)
        && (path.starts_with("/admin/") || path.starts_with("/pdd/PD/"));
    let resp = match (method, path.as_str()) {
        _ if (peer_info.listener == Listener::Api) && !(path.starts_with("/api/") || path == "/health") => plain(
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
            let Some(posto) = gw
                .pa
                .in_flight.enter(&partner, gw.config.limits.partner_concurrency)
            else {
                return Ok(troppe(&partner, gw.config.limits.partner_concurrency));
            };
            let tipo = TipoContenuto::di(&req);
            if let TipoContenuto::Altro(ct) = &tipo {
                return Ok(non_soap11(ct.as_deref(), &peer));
            }
            let spazio = match spazio_per(&gw, &req, &partner).await {
                Ok(p) => p,
                Err(r) => return Ok(r),
            };
            let content_type = content_type_di(&req);
            match read_body(req, max, timeout, ritmo).await {
                // application/soap+xml is SOAP 1.2's: its envelope gets the VersionMismatch
                // Fault (from the gateway), a SOAP 1.1 envelope under it is refused.
                Ok(body) if tipo == TipoContenuto::Soap12 && !soap12(&body, &gw) => {
                    non_soap11(Some("application/soap+xml"), &peer)
                }
                Ok(body) => {
                    // In a task of its own, processed to the end even if the partner goes away
                    // meanwhile: cut at an await, it would leave the Identificatore's claim in
                    // flight, and every retry refused as "in elaborazione" until the claim is
                    // abandoned (ten minutes). Its place and its share of the bodies' memory go
                    // with it: counted until it ends, not until the partner left.
                    let (gw, peer_info) = (gw.clone(), peer_info.clone());
                    let lavoro = async move {
                        let _limiti = (posto, spazio);
                        gw.pa
                            .ricevi_in(&body, content_type.as_deref(), &peer_info)
                            .await
                    };
                    match tokio::spawn(tracing::Instrument::in_current_span(lavoro)).await {
                        Ok(risposta) => respond(risposta),
                        Err(e) => {
                            warn!(error = %e, "the exchange's task failed");
                            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
                        }
                    }
                }
                Err(r) => r,
            }
        }
        (Method::POST, p) if p.starts_with("/pdd/PD/") => {
            let rest = &p["/pdd/PD/".len()..];
            let mut parts = rest.trim_end_matches('/').splitn(2, '/');
            let servizio = parts.next().unwrap_or("").to_string();
            let azione = parts.next().map(str::to_string);
            let intestazione = |nome: &str| {
                req.headers()
                    .get(nome)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            };
            // Without an azione in the path, the SOAPAction names it (the WSDL's porta
            // delegata binding sets it to the operation): one address for the servizio. A
            // SOAPAction that is not a plain name (a URI) names no azione, as before.
            let azione = azione.or_else(|| {
                intestazione("SOAPAction")
                    .map(|a| a.trim_matches('"').trim().to_string())
                    .filter(|a| {
                        !a.is_empty()
                            && a.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
                            })
                    })
            });
            let destinatario = intestazione("X-PDD-Destinatario");
            let riferimento = intestazione("X-PDD-RiferimentoMessaggio");
            let collaborazione = intestazione("X-PDD-Collaborazione");
            if servizio.is_empty() || azione.as_deref().is_some_and(|a| a.contains('/')) {
                rifiuta(HttpRefusal::PdPath)
            } else {
                // Each local system has its own places and share of the memory for bodies,
                // as partners do: one cannot starve the others.
                let sistema = sistema_locale(&gw, &req, &peer).await;
                let Some(_posto) = gw
                    .pa
                    .in_flight
                    .enter(&sistema, gw.config.limits.partner_concurrency)
                else {
                    return Ok(troppe(&sistema, gw.config.limits.partner_concurrency));
                };
                let _spazio = match spazio_per(&gw, &req, &sistema).await {
                    Ok(p) => p,
                    Err(r) => return Ok(r),
                };
                let content_type = content_type_di(&req).unwrap_or_default();
                match read_body(req, max, timeout, ritmo).await {
                    Ok(body) => {
                        // SOAP with Attachments: the envelope is the root part. A local system
                        // writing ISO-8859-1 (or another encoding read): the busta is built
                        // around its content as UTF-8.
                        let m = match crate::mime::scomponi(&content_type, &body, gw.config.limits.mime()) {
                            Ok(m) if m.difetti.is_empty() => m,
                            Ok(m) => return Ok(respond(gw.pd.illeggibile(format!("allegati: {}", m.difetti.join("; "))))),
                            Err(motivo) => return Ok(respond(gw.pd.illeggibile(motivo))),
                        };
                        respond(
                            Box::pin(gw.pd.invia(RichiestaPd {
                                    servizio,
                                    azione,
                                    destinatario,
                                    body: &m.testo,
                                    peer: Some(peer.to_string()),
                                    fisso: None,
                                    riferimento,
                                    collaborazione,
                                    allegati: &m.allegati,
                                }))
                                .await,
                        )
                    }
                    Err(r) => r,
                }
            }
        }
        (m, p) if p.starts_with("/admin/") => {
            if peer.ip().is_loopback() {
                let query = req.uri().query().map(str::to_string);
                let p = p.to_string();
                match read_body(req, max, timeout, ritmo).await {
                    Ok(body) => {
                        Box::pin(super::admin::admin(&gw, &m, &p, query.as_deref(), &body)).await
                    }
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
        (Method::GET, "/metrics") if peer.ip().is_loopback() && ((peer_info.listener == Listener::Local) || !gw.config.tls_on()) => {
            let mut r = Response::new(Full::new(Bytes::from(Box::pin(gw.prometheus()).await)));
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
            Box::pin(api(&gw, &req, &peer_info, t)).await
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
            }
            .and_then(|()| match gw.store.avviso() {
                Some(a) => Err(crate::store::StoreError::Invalid(a)),
                None => Ok(()),
            })
            .and_then(|()| match crate::gateway::care::spazio_esaurito(&gw.config) {
                Some(a) => Err(crate::store::StoreError::Invalid(a)),
                None => Ok(()),
            });
            // A node of a cluster says which it is (a load balancer's log, an operator).
            let nodo = match gw.config.store.engine {
                crate::config::Engine::Postgres => format!("node: {}\n", gw.nodo),
                crate::config::Engine::Sled => String::new(),
            };
            let spazio = crate::gateway::care::avviso_spazio(&gw.config)
                .map(|a| format!("warning: {a}\n"))
                .unwrap_or_default();
            match check {
                Ok(()) => plain(StatusCode::OK, &format!("ok\n{nodo}{spazio}")),
                Err(e) => plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("store: {e}\n{nodo}"),
                ),
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

/// The operator console: where `/admin` answers (loopback; the local listener, or the main
/// one when it is plain HTTP), never to partners over TLS nor on the read API's listener.
async fn pannello(
    gw: &Gateway,
    console: &super::console::Console,
    req: Request<Incoming>,
    peer: &Peer,
) -> Response<Body> {
    let tls = peer.listener == Listener::Main && gw.config.tls_on();
    if !peer.addr.ip().is_loopback() || tls || peer.listener == Listener::Api {
        return plain(
            StatusCode::NOT_FOUND,
            "the operator console answers on the local listener (loopback) only\n",
        );
    }
    let intestazione = |nome: hyper::header::HeaderName| {
        req.headers()
            .get(nome)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let cookie = intestazione(hyper::header::COOKIE);
    let origin = intestazione(hyper::header::ORIGIN);
    let host = intestazione(hyper::header::HOST);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    // Forms only: a certificate is a few KiB.
    let body = if method == Method::POST {
        match read_body(
            req,
            256 * 1024,
            Duration::from_secs(gw.config.limits.request_timeout_secs),
            Ritmo {
                minimo: 0,
                dopo: Duration::ZERO,
            },
        )
        .await
        {
            Ok(b) => b,
            Err(r) => return super::console::non_letta(r.status()),
        }
    } else {
        Bytes::new()
    };
    super::console::console(
        gw,
        console,
        super::console::Richiesta {
            method: &method,
            path: &path,
            query: query.as_deref(),
            cookie: cookie.as_deref(),
            origin: origin.as_deref(),
            host: host.as_deref(),
            body: &body,
            tls,
        },
    )
    .await
}

/// Who a porta applicativa request comes from, for the per-partner limit: the soggetto of its
/// TLS certificate, else its address.
fn chi_e(gw: &Gateway, peer: &Peer) -> String {
    peer.cert
        .as_ref()
        .and_then(|c| {
            gw.trust
                .get()
                .soggetto(c, &gw.registry(), gw.now().to_utc())
        })
        .map(|p| p.to_string())
        .unwrap_or_else(|| peer.addr.ip().to_string())
}

/// Room for a request's body among the bodies in progress, in `chi`'s share: its
/// Content-Length, or the most a chunked body may grow to; waits up to the header timeout.
async fn spazio_per(
    gw: &Gateway,
    req: &Request<Incoming>,
    chi: &str,
) -> Result<crate::gateway::limits::Prenotazione, Response<Body>> {
    let max = gw.config.limits.max_body_bytes;
    let dichiarati = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(max, |n| n.min(max));
    let attesa = Duration::from_secs(gw.config.limits.header_timeout_secs);
    gw.pa
        .body_budget
        .prenota(chi, dichiarati as u64, attesa)
        .await
        .map_err(|n| negato(chi, dichiarati, n))
}

/// Who a local system is, for its limits: the registered user whose token it sends
/// (`Authorization: Bearer`, `pdd users add`), else its address. Local systems on one host
/// without tokens share one allowance.
async fn sistema_locale(gw: &Gateway, req: &Request<Incoming>, peer: &SocketAddr) -> String {
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once(' ')
                .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim().to_string())
        });
    if let Some(t) = token {
        if let Ok(Some(nome)) = gw.api.utente_del_token(&t).await {
            return format!("locale:{nome}");
        }
    }
    format!("locale:{}", peer.ip())
}

/// The answer to a partner over its limit.
fn troppe(partner: &str, limite: usize) -> Response<Body> {
    warn!(
        partner,
        limite, "too many exchanges in progress from one partner: refused"
    );
    rifiuta(HttpRefusal::PartnerBusy {
        partner: partner.to_string(),
        limit: limite,
    })
}

/// The answer when the bodies in progress leave no room for this one: the partner holds its
/// share, or there is none left.
fn negato(partner: &str, byte: usize, n: Negato) -> Response<Body> {
    match n {
        Negato::Quota { usati, quota } => {
            warn!(
                partner,
                bytes = byte,
                used = usati,
                share = quota,
                "a partner's bodies in progress hold its share (limits.partner_bytes_in_flight): refused"
            );
            rifiuta(HttpRefusal::ShareFull {
                partner: partner.to_string(),
                used: usati,
                share: quota,
            })
        }
        Negato::Pieno => {
            warn!(
                partner,
                bytes = byte,
                "no room for another request body (limits.max_bytes_in_flight): refused"
            );
            rifiuta(HttpRefusal::NoRoom { bytes: byte })
        }
    }
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
    let partner = peer.cert.as_ref().is_some_and(|c| {
        gw.trust
            .get()
            .soggetto(c, &gw.registry(), gw.now().to_utc())
            .is_some()
    });
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
            match gw.api.token_valido(tok).await {
                Ok(true) => true,
                Ok(false) => return non_autorizzato("token non valido"),
                Err(e) => return errore(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            }
        }
    };
    match gw.api.pubblicati(t, req.uri().query(), registrato).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => errore(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        ),
    }
}
