//! Keys and certificates: RSA-2048 keys, self-signed or CA-issued certificates, CSRs,
//! fingerprints, and the checks a partner certificate must pass.

use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509Builder, X509KeyUsage, X509NameBuilder, X509Req, X509ReqBuilder, X509};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    #[error("{0}")]
    Invalid(String),
}

pub fn rsa_key() -> Result<PKey<Private>, PkiError> {
    Ok(PKey::from_rsa(Rsa::generate(2048)?)?)
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uso {
    /// A gateway: TLS server and client, and XML signatures.
    Gateway,
    /// A certification authority for test PKIs.
    Ca,
}

pub struct Richiesta<'a> {
    pub cn: &'a str,
    /// Subject alternative names: DNS names and IP addresses.
    pub san: &'a [String],
    pub days: u32,
    /// Start of validity, days from now (negative: in the past; for tests of expiry).
    pub from_days: i64,
    pub uso: Uso,
}

fn name(cn: &str) -> Result<openssl::x509::X509Name, PkiError> {
    let mut n = X509NameBuilder::new()?;
    n.append_entry_by_nid(Nid::COUNTRYNAME, "IT")?;
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "SPCoop")?;
    n.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    Ok(n.build())
}

/// A certificate for `key`, signed by `issuer` (or self-signed).
pub fn certificato(
    r: &Richiesta<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
) -> Result<X509, PkiError> {
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;
    b.set_serial_number(&serial)?;
    let subject = name(r.cn)?;
    b.set_subject_name(&subject)?;
    match issuer {
        Some((ic, _)) => b.set_issuer_name(ic.subject_name())?,
        None => b.set_issuer_name(&subject)?,
    }
    b.set_pubkey(key)?;
    let now = Utc::now().timestamp();
    let start = now + r.from_days * 86_400;
    let (from, to) = (
        Asn1Time::from_unix(start)?,
        Asn1Time::from_unix(start + r.days as i64 * 86_400)?,
    );
    b.set_not_before(&from)?;
    b.set_not_after(&to)?;
    match r.uso {
        Uso::Ca => {
            b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()?,
            )?;
        }
        Uso::Gateway => {
            b.append_extension(BasicConstraints::new().critical().build()?)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .key_encipherment()
                    .non_repudiation()
                    .build()?,
            )?;
            b.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()?,
            )?;
            if !r.san.is_empty() {
                let mut san = SubjectAlternativeName::new();
                for s in r.san {
                    if s.parse::<std::net::IpAddr>().is_ok() {
                        san.ip(s);
                    } else {
                        san.dns(s);
                    }
                }
                let ext = san.build(&b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None))?;
                b.append_extension(ext)?;
            }
        }
    }
    let signing_key = issuer.map_or(key, |(_, k)| k);
    b.sign(signing_key, MessageDigest::sha256())?;
    Ok(b.build())
}

/// A certificate signing request for `key`.
pub fn csr(cn: &str, key: &PKey<Private>) -> Result<X509Req, PkiError> {
    let mut b = X509ReqBuilder::new()?;
    let subject = name(cn)?;
    b.set_subject_name(&subject)?;
    b.set_pubkey(key)?;
    b.sign(key, MessageDigest::sha256())?;
    Ok(b.build())
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
        )
        .unwrap();
        assert!(emesso_da(&issued, std::slice::from_ref(&ca), Utc::now()));
        assert!(!emesso_da(&c, std::slice::from_ref(&ca), Utc::now()));
        // A CA certificate is not a signing certificate for a partner.
        assert!(controlla(&ca, Utc::now()).is_err());
        assert!(csr("EMILIA", &k).unwrap().verify(&k).unwrap());
    }
}
