//! Trust between Porte di Dominio: who a certificate belongs to, and the rustls configurations
//! of the porta applicativa (HTTPS with mandatory client certificates) and of the outbound
//! client (our certificate presented, the partner's verified).
//!
//! A partner's certificate is trusted when it is pinned in the registry (its SHA-256
//! fingerprint) or issued by a configured CA; either way it must be within its validity dates.
//! Pinned certificates change at run time (partner onboarding), so the verifiers read them from
//! a shared, swappable [`Trust`] ([`TrustStore`] holds the current one).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::egov::Parte;
use crate::registry::Registry;
use crate::wssec::pki;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {err}")]
    File { path: String, err: String },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("{0}")]
    Invalid(String),
}

/// Our own key and certificate: for TLS and for signing buste.
pub struct Identity {
    pub key: PKey<Private>,
    pub cert: X509,
}

impl Identity {
    pub fn load(cert: &std::path::Path, key: &std::path::Path) -> Result<Identity, TlsError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| TlsError::File {
                path: p.display().to_string(),
                err: e.to_string(),
            })
        };
        let certs = pki::leggi_pem(&read(cert)?).map_err(|e| TlsError::File {
            path: cert.display().to_string(),
            err: e.to_string(),
        })?;
        let key = PKey::private_key_from_pem(&read(key)?).map_err(|e| TlsError::File {
            path: key.display().to_string(),
            err: format!("chiave privata non leggibile: {e}"),
        })?;
        let cert = certs
            .into_iter()
            .next()
            .ok_or_else(|| TlsError::Invalid("nessun certificato".into()))?;
        let matches = cert
            .public_key()
            .map(|p| p.public_eq(&key))
            .unwrap_or(false);
        if !matches {
            return Err(TlsError::Invalid(
                "la chiave privata non corrisponde al certificato".into(),
            ));
        }
        Ok(Identity { key, cert })
    }

    fn rustls_material(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let cert = self
            .cert
            .to_der()
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        let key = self
            .key
            .private_key_to_pkcs8()
            .map_err(|e| TlsError::Invalid(e.to_string()))?;
        Ok((
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        ))
    }
}

/// Our certificate and key as TLS presents them, on both sides, swappable while serving (a
/// SIGHUP after the files changed): new handshakes use the new one, open connections go on.
#[derive(Debug)]
pub struct OwnKey(RwLock<Arc<rustls::sign::CertifiedKey>>);

impl OwnKey {
    fn certificata(me: &Identity) -> Result<Arc<rustls::sign::CertifiedKey>, TlsError> {
        let (chain, key) = me.rustls_material()?;
        let key = provider()
            .key_provider
            .load_private_key(key)
            .map_err(TlsError::Rustls)?;
        Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, key)))
    }

    pub fn new(me: &Identity) -> Result<Arc<OwnKey>, TlsError> {
        Ok(Arc::new(OwnKey(RwLock::new(Self::certificata(me)?))))
    }

    /// Takes a new key and certificate into use.
    pub fn set(&self, me: &Identity) -> Result<(), TlsError> {
        let k = Self::certificata(me)?;
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = k;
        Ok(())
    }

    fn get(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl rustls::server::ResolvesServerCert for OwnKey {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }
}

impl rustls::client::ResolvesClientCert for OwnKey {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }
    fn has_certs(&self) -> bool {
        true
    }
}

/// What we trust: the CAs of the configuration and the partners' pinned certificates.
#[derive(Default)]
pub struct Trust {
    pub cas: Vec<X509>,
    /// SHA-256 of a registered certificate → its soggetto.
    pub pinned: HashMap<[u8; 32], Parte>,
}

impl Trust {
    /// Builds the pinned set from the registry's certificates.
    pub fn new(cas: Vec<X509>, registry: &Registry) -> Trust {
        let mut pinned = HashMap::new();
        for s in registry.soggetti() {
            if let Some(c) = registry.certificato(&s.parte()) {
                pinned.insert(sha256(&c), s.parte());
            }
        }
        Trust { cas, pinned }
    }

    /// The soggetto a certificate belongs to at `now`: pinned, or CA-issued with the
    /// soggetto's name as its common name.
    pub fn soggetto(
        &self,
        cert: &X509,
        registry: &Registry,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<Parte> {
        if let Some(p) = self.pinned.get(&sha256(cert)) {
            return Some(p.clone());
        }
        if pki::emesso_da(cert, &self.cas, now) {
            let cn = pki::cn(cert)?;
            return registry
                .soggetti()
                .iter()
                .find(|s| s.nome == cn)
                .map(|s| s.parte());
        }
        None
    }
}

/// Who may sign for a soggetto: its certificate in the registry, or one of our CAs' naming it
/// (common name = the soggetto's name).
pub struct PartnerSigners<'a> {
    pub trust: &'a Trust,
    pub registry: &'a Registry,
}

impl crate::wssec::SignerVerifier for PartnerSigners<'_> {
    fn verify_signer(
        &self,
        parte: &Parte,
        cert: &X509,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::wssec::SignerError> {
        use crate::wssec::SignerError;
        let fp = sha256(cert);
        let registered = self
            .registry
            .certificato(parte)
            .is_some_and(|c| sha256(&c) == fp);
        // Checking the CA's signature costs an RSA verification: only when not pinned.
        let by_ca = || {
            pki::emesso_da(cert, &self.trust.cas, now)
                && pki::cn(cert).as_deref() == Some(parte.nome.as_str())
        };
        if !(registered || by_ca()) {
            if let Some(other) = self.trust.pinned.get(&fp) {
                return Err(SignerError::Altrui {
                    parte: parte.to_string(),
                    altro: other.to_string(),
                });
            }
            return Err(SignerError::NonRegistrato(parte.to_string()));
        }
        pki::controlla(cert, now).map_err(|e| SignerError::NonValido(e.to_string()))
    }
}

pub fn sha256(cert: &X509) -> [u8; 32] {
    cert.to_der()
        .map(|d| openssl::sha::sha256(&d))
        .unwrap_or([0; 32])
}

/// Trust shared with the TLS verifiers, replaced when partners change.
#[derive(Default)]
pub struct TrustStore(RwLock<Arc<Trust>>);

impl TrustStore {
    pub fn new(f: Trust) -> TrustStore {
        TrustStore(RwLock::new(Arc::new(f)))
    }
    pub fn get(&self) -> Arc<Trust> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
    pub fn set(&self, f: Trust) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(f);
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(cas: &[X509]) -> Result<RootCertStore, TlsError> {
    let mut r = RootCertStore::empty();
    for c in cas {
        let der = c.to_der().map_err(|e| TlsError::Invalid(e.to_string()))?;
        r.add(CertificateDer::from(der)).map_err(TlsError::Rustls)?;
    }
    Ok(r)
}

/// Checks dates (rustls' own verifiers do for CA-issued chains; pinned certificates need it too).
fn in_date(der: &CertificateDer<'_>, now: UnixTime) -> Result<X509, rustls::Error> {
    let cert = X509::from_der(der)
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let now = chrono::DateTime::from_timestamp(now.as_secs() as i64, 0).unwrap_or_default();
    match (pki::not_before(&cert), pki::not_after(&cert)) {
        (Some(nb), _) if nb > now => Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYet,
        )),
        (_, Some(na)) if na < now => {
            Err(rustls::Error::InvalidCertificate(CertificateError::Expired))
        }
        (Some(_), Some(_)) => Ok(cert),
        _ => Err(rustls::Error::InvalidCertificate(
            CertificateError::BadEncoding,
        )),
    }
}

/// The handshake-signature methods both verifiers share: checked with our crypto provider.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algs = &self.provider.signature_verification_algorithms;
            rustls::crypto::verify_tls12_signature(m, c, d, algs)
        }

        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            let algs = &self.provider.signature_verification_algorithms;
            rustls::crypto::verify_tls13_signature(m, c, d, algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    };
}

/// Client certificates on the porta applicativa: pinned partners, or our CAs.
#[derive(Debug)]
struct PartnerClientVerifier {
    trust: Arc<TrustStore>,
    ca: Option<Arc<dyn ClientCertVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustStore")
    }
}

impl ClientCertVerifier for PartnerClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let cert = in_date(end_entity, now)?;
        if self.trust.get().pinned.contains_key(&sha256(&cert)) {
            return Ok(ClientCertVerified::assertion());
        }
        match &self.ca {
            Some(v) => v.verify_client_cert(end_entity, intermediates, now),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    handshake_signatures!();
}

/// Partners' server certificates for the outbound client: pinned, or our CAs with the host name.
#[derive(Debug)]
struct PartnerServerVerifier {
    trust: Arc<TrustStore>,
    ca: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PartnerServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = in_date(end_entity, now)?;
        if self.trust.get().pinned.contains_key(&sha256(&cert)) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.ca {
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer,
            )),
        }
    }

    handshake_signatures!();
}

/// The porta applicativa's TLS: our certificate, client certificates required.
pub fn server_config(
    me: Arc<OwnKey>,
    cas: &[X509],
    trust: Arc<TrustStore>,
    client_auth: bool,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?;
    let config = if client_auth {
        let ca = if cas.is_empty() {
            None
        } else {
            Some(
                WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots(cas)?),
                    provider.clone(),
                )
                .build()
                .map_err(|e| TlsError::Invalid(e.to_string()))?,
            )
        };
        builder
            .with_client_cert_verifier(Arc::new(PartnerClientVerifier {
                trust,
                ca,
                provider,
            }))
            .with_cert_resolver(me)
    } else {
        builder.with_no_client_auth().with_cert_resolver(me)
    };
    Ok(config)
}

/// The outbound client's TLS: our certificate presented, the partner's verified.
pub fn client_config(
    me: Option<Arc<OwnKey>>,
    cas: &[X509],
    trust: Arc<TrustStore>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = provider();
    let ca = if cas.is_empty() {
        None
    } else {
        Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots(cas)?), provider.clone())
                .build()
                .map_err(|e| TlsError::Invalid(e.to_string()))?,
        )
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PartnerServerVerifier {
            trust,
            ca,
            provider,
        }));
    Ok(match me {
        Some(me) => builder.with_client_cert_resolver(me),
        None => builder.with_no_client_auth(),
    })
}
