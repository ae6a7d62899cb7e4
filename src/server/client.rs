//! Outbound HTTP (hyper, rustls): the gateway's [`Transport`] for the porta delegata's posts to
//! partners, sbustamento's posts to backends and EURES deliveries.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::Request;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::gateway::{Transport, TransportError as ClientError, TransportResponse as Response};

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    max_body: usize,
}

impl HttpClient {
    /// A client for http:// and https:// URLs; `tls` says what certificate we present and which
    /// partners' certificates we accept.
    pub fn new(max_body: usize, tls: rustls::ClientConfig) -> HttpClient {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(10)));
        conn.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(conn);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        HttpClient { inner, max_body }
    }

    /// The transport of a gateway: what [`crate::gateway::Gateway::new`] asks for.
    pub fn transport(tls: rustls::ClientConfig, max_body: usize) -> std::sync::Arc<dyn Transport> {
        std::sync::Arc::new(HttpClient::new(max_body, tls))
    }
}

#[async_trait::async_trait]
impl Transport for HttpClient {
    /// POSTs a SOAP 1.1 message; answers of any status are returned (a SOAP Fault comes with 500).
    async fn post_soap(
        &self,
        url: &str,
        body: Bytes,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let uri: hyper::Uri = url.parse().map_err(|_| ClientError::Url(url.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) {
            return Err(ClientError::Url(format!("{url}: use http:// or https://")));
        }
        let mut req = Request::post(uri)
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(Full::new(body))
            .map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        for (k, v) in headers {
            if let (Ok(k), Ok(v)) = (
                HeaderName::try_from(k.as_str()),
                HeaderValue::try_from(v.as_str()),
            ) {
                req.headers_mut().insert(k, v);
            }
        }
        let call = async {
            let resp = self.inner.request(req).await.map_err(|e| {
                // Failing to connect sends nothing; any later failure may come after the
                // partner got the request.
                if e.is_connect() {
                    ClientError::Connect {
                        url: url.to_string(),
                        err: error_chain(&e),
                    }
                } else {
                    ClientError::Lost {
                        url: url.to_string(),
                        err: error_chain(&e),
                    }
                }
            })?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let body = Limited::new(resp.into_body(), self.max_body)
                .collect()
                .await
                .map_err(|e| ClientError::Lost {
                    url: url.to_string(),
                    err: e.to_string(),
                })?
                .to_bytes();
            Ok(Response {
                status,
                content_type,
                body,
            })
        };
        tokio::time::timeout(timeout, call)
            .await
            .map_err(|_| ClientError::Timeout(url.to_string()))?
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One keep-alive HTTP/1.1 connection over TLS to a porta applicativa, posting SOAP messages
/// one after the other: what a partner's gateway under load does (`pdd bench`).
pub struct Connessione {
    mittente: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Connessione {
    /// Connects to `addr` (TLS with `tls`, the server named by its IP address).
    pub async fn apri(
        tls: std::sync::Arc<rustls::ClientConfig>,
        addr: std::net::SocketAddr,
    ) -> Result<Connessione, ClientError> {
        let url = format!("https://{addr}");
        let errore = |err: String| ClientError::Connect {
            url: url.clone(),
            err,
        };
        let tcp = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| errore(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await
            .map_err(|e| errore(format!("TLS: {e}")))?;
        let (mittente, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| errore(format!("HTTP: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Connessione {
            mittente,
            host: addr.to_string(),
        })
    }

    /// POSTs a SOAP 1.1 message to `path`: the status and the body of the answer.
    pub async fn post_soap(
        &mut self,
        path: &str,
        soap_action: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        let url = format!("https://{}{path}", self.host);
        let req = Request::post(path)
            .header(hyper::header::HOST, self.host.as_str())
            .header(CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("SOAPAction", soap_action)
            .body(Full::new(body))
            .map_err(|e| ClientError::Url(format!("{url}: {e}")))?;
        self.mittente
            .ready()
            .await
            .map_err(|e| ClientError::Connect {
                url: url.clone(),
                err: e.to_string(),
            })?;
        let r = self
            .mittente
            .send_request(req)
            .await
            .map_err(|e| ClientError::Connect {
                url: url.clone(),
                err: error_chain(&e),
            })?;
        let status = r.status().as_u16();
        let body = r
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Body {
                url,
                err: e.to_string(),
            })?
            .to_bytes();
        Ok((status, body))
    }
}
