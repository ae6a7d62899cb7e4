//! WS-Security for the busta: exclusive canonicalization, XML signatures (OASIS WSS 1.0/1.1,
//! X.509 token profile) and the keys and certificates behind them. Pure: no I/O; time is a
//! parameter.

pub mod c14n;
pub mod dsig;
pub mod pki;

use chrono::{DateTime, Utc};
use openssl::x509::X509;

use crate::egov::Parte;

/// Who may sign for a party. A signature proves only that the holder of a key signed; whether
/// that certificate speaks for the busta's Mittente is the gateway's trust (its partners' pinned
/// certificates, its CAs), put behind this trait as rustls puts trust behind its verifiers.
pub trait SignerVerifier {
    /// Whether `cert` may sign for `parte` at `now`.
    fn verify_signer(
        &self,
        parte: &Parte,
        cert: &X509,
        now: DateTime<Utc>,
    ) -> Result<(), SignerError>;
}

/// Why a certificate may not sign for a party.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The certificate is registered, for another party.
    #[error("la busta di {parte} è firmata con il certificato di {altro}")]
    Altrui { parte: String, altro: String },
    /// Neither registered for the party nor issued to it by a trusted CA.
    #[error("il certificato della firma non è quello registrato per {0}")]
    NonRegistrato(String),
    /// The party's own certificate, but not valid now.
    #[error("certificato della firma: {0}")]
    NonValido(String),
}
