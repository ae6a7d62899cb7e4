//! Certificates as a signature and TLS see them: reading PEM, fingerprints, names, dates, and
//! the checks a partner certificate must pass at a given time. (Issuing keys and certificates is
//! the CLI's: `crate::cli::certs`.)

use chrono::{DateTime, Utc};
use openssl::asn1::Asn1Time;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509KeyUsage, X509};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    Invalid(String),
}

/// SHA-256 fingerprint, `AB:CD:…`.
pub fn fingerprint(cert: &X509) -> String {
    cert.digest(MessageDigest::sha256())
        .map(|d| {
            d.iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":")
        })
        .unwrap_or_default()
}

fn asn1_to_utc(t: &openssl::asn1::Asn1TimeRef) -> Option<DateTime<Utc>> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    DateTime::from_timestamp(d.days as i64 * 86_400 + d.secs as i64, 0)
}

pub fn not_before(cert: &X509) -> Option<DateTime<Utc>> {
    asn1_to_utc(cert.not_before())
}

pub fn not_after(cert: &X509) -> Option<DateTime<Utc>> {
    asn1_to_utc(cert.not_after())
}

/// The certificate's common name.
pub fn cn(cert: &X509) -> Option<String> {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .and_then(|e| e.data().to_string().ok())
}

/// Checks that a certificate can stand for a partner: in its validity period, an RSA or EC key,
/// and usable for signatures (if it says what it is for).
pub fn controlla(cert: &X509, now: DateTime<Utc>) -> Result<(), PkiError> {
    match (not_before(cert), not_after(cert)) {
        (Some(nb), _) if nb > now => {
            return Err(PkiError::Invalid(format!(
                "certificato non ancora valido (dal {nb})"
            )));
        }
        (_, Some(na)) if na < now => {
            return Err(PkiError::Invalid(format!("certificato scaduto il {na}")));
        }
        (None, _) | (_, None) => {
            return Err(PkiError::Invalid("date di validità illeggibili".into()))
        }
        _ => {}
    }
    let key = cert.public_key()?;
    if key.rsa().is_err() && key.ec_key().is_err() {
        return Err(PkiError::Invalid("chiave pubblica né RSA né EC".into()));
    }
    // A certificate issued only for key encipherment or for CAs is not a partner's.
    // (No Key Usage extension means an unrestricted key.)
    match cert.key_usage() {
        Some(ku) if !ku.contains(X509KeyUsage::DIGITAL_SIGNATURE) => Err(PkiError::Invalid(
            format!("uso della chiave non adatto alla firma ({ku:?})"),
        )),
        _ => Ok(()),
    }
}

/// Whether `cert` was issued (signed) by one of `cas` and both are valid now.
pub fn emesso_da(cert: &X509, cas: &[X509], now: DateTime<Utc>) -> bool {
    cas.iter().any(|ca| {
        ca.public_key()
            .is_ok_and(|k| cert.verify(&k).unwrap_or(false))
            && cert.issuer_name().to_der().ok() == ca.subject_name().to_der().ok()
            && controlla_date(ca, now)
    })
}

fn controlla_date(cert: &X509, now: DateTime<Utc>) -> bool {
    matches!((not_before(cert), not_after(cert)), (Some(a), Some(b)) if a <= now && now <= b)
}

/// Reads PEM certificates (one or more).
pub fn leggi_pem(bytes: &[u8]) -> Result<Vec<X509>, PkiError> {
    let certs = X509::stack_from_pem(bytes)?;
    if certs.is_empty() {
        return Err(PkiError::Invalid("nessun certificato PEM".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::certs::{certificato, csr, rsa_key, Richiesta, Uso};
    use openssl::pkey::{PKey, Private};

    pub fn gateway_cert(cn: &str, days: u32, from_days: i64) -> (PKey<Private>, X509) {
        let k = rsa_key().unwrap();
        let c = certificato(
            &Richiesta {
                cn,
                san: &["127.0.0.1".to_string(), "localhost".to_string()],
                days,
                from_days,
                uso: Uso::Gateway,
            },
            &k,
            None,
            Utc::now(),
        )
        .unwrap();
        (k, c)
    }

    #[test]
    fn self_signed_and_issued_certificates() {
        let (_, c) = gateway_cert("EMILIA", 30, 0);
        assert_eq!(cn(&c).as_deref(), Some("EMILIA"));
        assert_eq!(fingerprint(&c).len(), 32 * 3 - 1);
        assert!(controlla(&c, Utc::now()).is_ok());
        let (_, old) = gateway_cert("OLD", 1, -10);
        assert!(controlla(&old, Utc::now())
            .unwrap_err()
            .to_string()
            .contains("scaduto"));
        let (_, future) = gateway_cert("FUT", 10, 5);
        assert!(controlla(&future, Utc::now())
            .unwrap_err()
            .to_string()
            .contains("non ancora valido"));

        let ca_key = rsa_key().unwrap();
        let ca = certificato(
            &Richiesta {
                cn: "Test CA",
                san: &[],
                days: 30,
                from_days: 0,
                uso: Uso::Ca,
            },
            &ca_key,
            None,
            Utc::now(),
        )
        .unwrap();
        let k = rsa_key().unwrap();
        let issued = certificato(
            &Richiesta {
                cn: "LAZIO",
                san: &[],
                days: 30,
                from_days: 0,
                uso: Uso::Gateway,
            },
            &k,
            Some((&ca, &ca_key)),
            Utc::now(),
        )
        .unwrap();
        assert!(emesso_da(&issued, std::slice::from_ref(&ca), Utc::now()));
        assert!(!emesso_da(&c, std::slice::from_ref(&ca), Utc::now()));
        // A CA certificate is not a signing certificate for a partner.
        assert!(controlla(&ca, Utc::now()).is_err());
        assert!(csr("EMILIA", &k).unwrap().verify(&k).unwrap());
    }
}
