//! Services behind the porta applicativa: built-in handlers and sbustamento to a backend.

pub mod backend;
pub mod cliclavoro;

use std::ops::Range;

use chrono::{DateTime, FixedOffset};

use crate::egov::Busta;
use crate::registry::Servizio;
use crate::soap::Envelope;

/// What a service receives: the busta that was validated and the message it came in.
pub struct Chiamata<'a> {
    pub env: &'a Envelope<'a>,
    /// Byte ranges of the header blocks the gateway consumed (the busta, WS-Security), removed
    /// before the message goes to a backend.
    pub rimuovi: Vec<Range<usize>>,
    pub busta: &'a Busta,
    pub servizio: &'a Servizio,
    pub received_at: DateTime<FixedOffset>,
    /// The SOAP with Attachments parts besides the Body (the Manifest already undone).
    pub allegati: &'a [crate::mime::Parte],
}

/// The service's answer: the content of the response Body.
#[derive(Debug)]
pub struct Reply {
    pub body: String,
    /// Namespace declarations the body content relies on (see [`crate::soap::envelope_ns`]).
    pub body_ns: Vec<(String, String)>,
    /// The body is an application SOAP Fault (answered with HTTP 500).
    pub fault: bool,
    /// A short outcome for the trace (e.g. "OK", "KO: codice mancante").
    pub note: Option<String>,
    /// What the exchange changes in the store (moduli, forwards…), written with its record
    /// ([`crate::store::Effetti::commit`]).
    pub effetti: Option<crate::store::Effetti>,
    /// Attachments of the answer (SOAP with Attachments).
    pub allegati: Vec<crate::mime::Parte>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    #[error("backend: {0}")]
    Backend(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("no handler or backend is configured for servizio {0}")]
    NoHandler(String),
    #[error("unknown built-in handler '{0}'")]
    UnknownHandler(String),
}

/// The built-in `echo` handler: answers with the request's Body content and attachments.
pub fn echo(c: &Chiamata<'_>) -> Reply {
    Reply {
        allegati: c.allegati.to_vec(),
        effetti: None,
        body: c.env.body_content_str().to_string(),
        body_ns: c.env.body_ns.clone(),
        fault: false,
        note: Some("echo".into()),
    }
}
