//! Issuing keys and certificates, for `pdd certs`, the load generator's throw-away PKI and the
//! tests: RSA-2048 keys, self-signed or CA-issued certificates for gateways and test CAs, CSRs.

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
use openssl::x509::{X509Builder, X509NameBuilder, X509Req, X509ReqBuilder, X509};

pub use crate::wssec::pki::PkiError;

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

/// A certificate for `key`, signed by `issuer` (or self-signed), valid from `now` (moved by
/// `from_days`).
pub fn certificato(
    r: &Richiesta<'_>,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    now: DateTime<Utc>,
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
    let now = now.timestamp();
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
