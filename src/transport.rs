//! Outbound HTTP as the gateway and the services ask for it, without saying how: the server
//! module implements it over hyper and rustls; tests may implement it over anything.

use std::time::Duration;

use async_trait::async_trait;

/// Outbound HTTP, as the gateway needs it: a SOAP message posted to a URL, its answer whatever
/// the status. The shell provides it (over hyper and rustls).
#[async_trait]
pub trait Transport: Send + Sync {
    /// A `Content-Type` among `headers` replaces the SOAP 1.1 one (SOAP with Attachments).
    async fn post_soap(
        &self,
        url: &str,
        body: bytes::Bytes,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<TransportResponse, TransportError>;
}

/// An answer received over a [`Transport`].
#[derive(Debug, Clone)]
pub struct TransportResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: bytes::Bytes,
}

#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("bad URL '{0}'")]
    Url(String),
    #[error("cannot reach {url}: {err}")]
    Connect { url: String, err: String },
    #[error("no answer from {0} in time")]
    Timeout(String),
    /// The request went out (or may have), and its answer did not come back whole.
    #[error("answer from {url} lost: {err}")]
    Lost { url: String, err: String },
    #[error("answer from {url} unreadable: {err}")]
    Body { url: String, err: String },
}
