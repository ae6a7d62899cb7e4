//! The transport's own ceiling, for `pdd bench`: the same listeners and TLS set-up as the
//! gateway (mutual TLS against the same trust), hyper's HTTP/1.1, and a handler that reads the
//! body whole and answers a fixed SOAP message of about 1 KB. Whatever the gateway spends beyond
//! this is its own work.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// The fixed answer: a SOAP 1.1 envelope of about 1 KB.
fn risposta() -> Bytes {
    let riempitivo = "x".repeat(840);
    Bytes::from(crate::soap::envelope(
        &[],
        &format!("<e:Eco xmlns:e=\"urn:pdd:bench\"><e:Testo>{riempitivo}</e:Testo></e:Eco>"),
    ))
}

async fn gestisci(
    req: Request<Incoming>,
    corpo: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let salute = req.uri().path() == "/health";
    // Read whole, as the gateway reads a request before it answers.
    let letti = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().len())
        .unwrap_or(0);
    let mut r = Response::new(Full::new(if salute {
        Bytes::from_static(b"ok\n")
    } else {
        corpo
    }));
    if !salute && letti == 0 {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    Ok(r)
}

async fn servi<I>(io: I, corpo: Bytes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(
            TokioIo::new(io),
            service_fn(move |req| gestisci(req, corpo.clone())),
        )
        .await;
}

/// Serves the echo until the process ends: `listener` with `tls` when given, `locale` plain
/// (for `/health`).
pub async fn serve(
    tls: Option<rustls::ServerConfig>,
    listener: TcpListener,
    locale: Option<TcpListener>,
) -> std::io::Result<()> {
    let corpo = risposta();
    let acceptor = tls.map(|c| tokio_rustls::TlsAcceptor::from(Arc::new(c)));
    if let Some(l) = locale {
        let corpo = corpo.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(servi(s, corpo.clone()));
            }
        });
    }
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let corpo = corpo.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(a) => {
                    if let Ok(tls) = a.accept(stream).await {
                        servi(tls, corpo).await
                    }
                }
                None => servi(stream, corpo).await,
            }
        });
    }
}
