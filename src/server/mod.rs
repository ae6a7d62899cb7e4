//! The HTTP shell (hyper, rustls): listeners and connections, routing to the gateway's parts,
//! and its answers written back. The only module that speaks HTTP.
//!
//! - `POST /pdd/PA`: porta applicativa (partners' buste)
//! - `POST /pdd/PD/{Servizio}/{Azione}`, or `POST /pdd/PD/{Servizio}` with the azione in the
//!   `SOAPAction`: porta delegata (local systems' plain SOAP)
//! - `GET /api/candidature`, `GET /api/vacancies`: the read API
//! - `GET /health`, `GET /metrics`; `/admin/…` on loopback (see [`admin`])
//! - `/console`: the operator console, on loopback (see [`console`])

mod admin;
pub mod client;
mod console;
pub mod eco;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::gateway::diagnostici::{Diagnostico, Severita};
use crate::gateway::{Answer, Gateway, GatewayError, Listener, Peer};
use crate::registry::Registry;
use crate::store::Store;

/// A gateway wired to this shell's outbound HTTP client.
pub fn gateway(
    config: Config,
    registry: Registry,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    test_clock: Option<Arc<crate::clock::OffsetClock>>,
) -> Result<Gateway, GatewayError> {
    Gateway::con_orologio(
        config,
        registry,
        store,
        clock,
        test_clock,
        &client::HttpClient::transport,
    )
}

type Body = Full<Bytes>;

pub(crate) fn respond(a: Answer) -> Response<Body> {
    let corpo = match &a.mime {
        Some(m) => m.corpo.clone(),
        None => Bytes::from(a.body.clone()),
    };
    let mut r = Response::new(Full::new(corpo));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(m) = &a.mime {
        if let Ok(v) = HeaderValue::try_from(m.content_type.as_str()) {
            r.headers_mut().insert(CONTENT_TYPE, v);
        }
    } else if !a.body.is_empty() {
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

pub(crate) fn plain(status: StatusCode, text: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(text.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) fn json(status: StatusCode, v: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(v.to_string())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A query parameter, percent-decoded.
pub(crate) fn parametro(query: Option<&str>, nome: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == nome).then(|| percent_decode(v))
    })
}

/// An instant as ms since the epoch: a number of ms, or RFC 3339.
pub(crate) fn istante_ms(v: &str) -> Option<i64> {
    v.parse::<i64>().ok().or_else(|| {
        chrono::DateTime::parse_from_rfc3339(v)
            .ok()
            .map(|t| t.timestamp_millis())
    })
}

/// Decodes %XX escapes (an Identificatore's `:` may arrive as %3A).
pub(crate) fn percent_decode(s: &str) -> String {
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
        Err(e) => return Err(std::io::Error::other(e.to_string())),
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
            gw.outbox.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::scadenze::worker(
            gw.scadenze.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::care::worker(
            gw.care.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::partners::worker(
            gw.shared.clone(),
            stop(stop_rx.clone()),
        )),
        tokio::spawn(crate::gateway::care::sorveglia_spazio(
            gw.shared.clone(),
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
    // The console's sessions, for as long as this server runs.
    let console = Arc::new(console::Console::default());
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
                let console = console.clone();
                let watcher = graceful.watcher();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        None => serve_io(stream, gw, console, Arc::new(Peer { addr, cert: None, listener: Listener::Main }), watcher, header_timeout).await,
                        Some(acc) => match tokio::time::timeout(header_timeout, acc.accept(stream)).await {
                            Ok(Ok(tls)) => {
                                let cert = tls
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(|d| openssl::x509::X509::from_der(d).ok());
                                serve_io(tls, gw, console, Arc::new(Peer { addr, cert, listener: Listener::Main }), watcher, header_timeout).await
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
                    tokio::spawn(serve_io(stream, gw, console.clone(), Arc::new(Peer { addr, cert: None, listener: Listener::Local }), watcher, header_timeout));
                }
            }
            accepted = api_accept => {
                if let Ok((stream, addr)) = accepted {
                    let gw = gw.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(serve_io(stream, gw, console.clone(), Arc::new(Peer { addr, cert: None, listener: Listener::Api }), watcher, header_timeout));
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
    if let Err(e) = gw.store.close().await {
        tracing::error!(error = %e, "final store flush failed");
        return Err(std::io::Error::other(FlushFinale(e.to_string())));
    }
    info!("stopped");
    Ok(())
}

/// The store's last flush at shutdown failed: what was written since the last durable point
/// may be lost, and the process says so with its exit status.
#[derive(Debug, thiserror::Error)]
#[error("final store flush failed: {0}")]
pub struct FlushFinale(pub String);

/// Serves HTTP/1.1 on one connection (plain or TLS), watched for graceful shutdown.
async fn serve_io<I>(
    io: I,
    gw: Arc<Gateway>,
    console: Arc<console::Console>,
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
        service_fn(move |req| routes::handle(gw.clone(), console.clone(), req, peer.clone())),
    );
    if let Err(e) = watcher.watch(conn).await {
        debug!(peer = %addr, error = %e, "connection closed with error");
    }
}
