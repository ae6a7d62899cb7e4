//! Helpers for tests and the load generator (`pdd bench`): temp dirs, free loopback ports, a
//! throw-away PKI. Not test-only code: the binary uses it. Addresses are loopback only.
//!
//! The fallible forms (`TempDir::create`, `free_loopback`, `Pki::in_dir`, `Pki::issue`,
//! `KeyPair::read`) serve the load generator; the panicking ones (`TempDir::new`, `free_port`,
//! `Pki::new`, `Pki::make`, `KeyPair::load`, `KeyPair::sign`) the tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::cli::certs::{self, PkiError};

pub mod postgres;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KitError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot find a free loopback port: {0}")]
    Port(std::io::Error),
    #[error(transparent)]
    Pki(#[from] PkiError),
}

impl From<openssl::error::ErrorStack> for KitError {
    fn from(e: openssl::error::ErrorStack) -> KitError {
        KitError::Pki(PkiError::from(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KitError + '_ {
    move |source| KitError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A fresh directory under the system temp dir, `pdd-<tag>-<pid>-<n>`, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn create(tag: &str) -> Result<TempDir, KitError> {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "pdd-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        // Left by an earlier process of the same pid.
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
        Ok(TempDir(p))
    }

    /// [`TempDir::create`], panicking (for tests).
    pub fn new(tag: &str) -> TempDir {
        TempDir::create(tag).unwrap_or_else(|e| panic!("temp dir: {e}"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A loopback address whose port was free when asked: nothing holds it after, so another
/// process may still take it before the caller binds it.
pub fn free_loopback() -> Result<SocketAddr, KitError> {
    tieni_porta()
        .and_then(|l| l.local_addr())
        .map_err(KitError::Port)
}

/// A listener on a free loopback port below the kernel's ephemeral range where there is room:
/// a port the kernel hands out by itself (bind to 0) is also one it gives to outgoing
/// connections, and the many connections of a test run took such a port between its release
/// and the server's bind (seen as "Address already in use" in CI).
fn tieni_porta() -> std::io::Result<TcpListener> {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let basso = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    const DA: u32 = 10_000;
    if basso > DA + 1_000 {
        let giro = basso - DA;
        let seme = std::process::id().wrapping_mul(2_654_435_761).wrapping_add(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0),
        );
        for _ in 0..64 {
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let porta = DA + seme.wrapping_add(n.wrapping_mul(7_919)) % giro;
            if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, porta as u16)) {
                return Ok(l);
            }
        }
    }
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
}

/// `n` distinct loopback addresses free when asked (held together while asking, so that no
/// port comes twice); as [`free_loopback`], nothing holds them after.
pub fn free_loopbacks(n: usize) -> Result<Vec<SocketAddr>, KitError> {
    let held = (0..n)
        .map(|_| tieni_porta())
        .collect::<Result<Vec<_>, _>>()
        .map_err(KitError::Port)?;
    held.iter()
        .map(|l| l.local_addr().map_err(KitError::Port))
        .collect()
}

/// The ports of [`free_loopbacks`], panicking (for tests).
pub fn free_ports(n: usize) -> Vec<u16> {
    free_loopbacks(n)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|a| a.port())
        .collect()
}

/// The port of [`free_loopback`], panicking (for tests).
pub fn free_port() -> u16 {
    free_loopback().unwrap_or_else(|e| panic!("{e}")).port()
}

/// A throw-away CA and the PEM files it makes, in one directory.
pub struct Pki {
    pub dir: PathBuf,
    /// The temp dir holding `dir`, when [`Pki::new`] made it.
    _temp: Option<TempDir>,
    ca_key: PKey<Private>,
    pub ca_cert: X509,
    /// Whether the CA was made now (not read from `dir`).
    made: bool,
}

/// Paths of a key (PKCS#8 PEM) and its certificate (PEM).
#[derive(Clone, Debug)]
pub struct KeyPair {
    pub key: PathBuf,
    pub cert: PathBuf,
}

impl KeyPair {
    pub fn read(&self) -> Result<(PKey<Private>, X509), KitError> {
        let key = std::fs::read(&self.key).map_err(io(&self.key))?;
        let cert = std::fs::read(&self.cert).map_err(io(&self.cert))?;
        Ok((PKey::private_key_from_pem(&key)?, X509::from_pem(&cert)?))
    }

    /// [`KeyPair::read`], panicking (for tests).
    pub fn load(&self) -> (PKey<Private>, X509) {
        self.read().unwrap_or_else(|e| panic!("key pair: {e}"))
    }

    /// `msg` signed by pdd with this key (Body, the whole Intestazione as pdd signs by
    /// default, a 5-minute Timestamp from now); panics (for tests).
    pub fn sign(&self, msg: &str) -> String {
        self.sign_covering(msg, crate::wssec::dsig::Copertura::default())
    }

    /// [`KeyPair::sign`] covering this part of the busta (a partner signing only the
    /// IntestazioneMessaggio, as many do).
    pub fn sign_covering(&self, msg: &str, copertura: crate::wssec::dsig::Copertura) -> String {
        let (key, cert) = self.load();
        crate::wssec::dsig::firma(
            msg,
            &key,
            &cert,
            chrono::Utc::now(),
            chrono::Duration::minutes(5),
            copertura,
        )
        .unwrap_or_else(|e| panic!("signing: {e}"))
    }
}

impl Pki {
    /// A CA named "Test CA" in a temp dir removed on drop; panics (for tests).
    #[allow(
        clippy::new_without_default,
        reason = "it makes keys and files: not a default value"
    )]
    pub fn new() -> Pki {
        let make = || -> Result<Pki, KitError> {
            let temp = TempDir::create("pki")?;
            let mut pki = Pki::in_dir(&temp.0, "Test CA")?;
            pki._temp = Some(temp);
            Ok(pki)
        };
        make().unwrap_or_else(|e| panic!("test PKI: {e}"))
    }

    /// The CA in `dir` (`ca.key`, `ca.crt`) when both are there, else a new one named `cn`
    /// (valid 30 days from yesterday) written there.
    pub fn in_dir(dir: &Path, cn: &str) -> Result<Pki, KitError> {
        let (key, cert) = (dir.join("ca.key"), dir.join("ca.crt"));
        if key.is_file() && cert.is_file() {
            let (ca_key, ca_cert) = KeyPair { key, cert }.read()?;
            return Ok(Pki {
                dir: dir.to_path_buf(),
                _temp: None,
                ca_key,
                ca_cert,
                made: false,
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let ca_key = certs::rsa_key()?;
        let ca_cert = certs::certificato(
            &certs::Richiesta {
                cn,
                san: &[],
                days: 30,
                from_days: -1,
                uso: certs::Uso::Ca,
            },
            &ca_key,
            None,
            chrono::Utc::now(),
        )?;
        let ca = Pki {
            dir: dir.to_path_buf(),
            _temp: None,
            ca_key,
            ca_cert,
            made: true,
        };
        ca.save("ca", &ca.ca_key, &ca.ca_cert)?;
        Ok(ca)
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// The key pair `name` in the directory (no check that it is there).
    pub fn pair(&self, name: &str) -> KeyPair {
        KeyPair {
            key: self.dir.join(format!("{name}.key")),
            cert: self.dir.join(format!("{name}.crt")),
        }
    }

    /// A gateway certificate for `cn` (SAN 127.0.0.1, localhost), written as `<name>.key` and
    /// `<name>.crt`: self-signed, or issued by the CA; valid `days` from `from_days`
    /// (negative: in the past).
    pub fn issue(
        &self,
        name: &str,
        cn: &str,
        issued: bool,
        days: u32,
        from_days: i64,
    ) -> Result<KeyPair, KitError> {
        let key = certs::rsa_key()?;
        let san = ["127.0.0.1".to_string(), "localhost".to_string()];
        let cert = certs::certificato(
            &certs::Richiesta {
                cn,
                san: &san,
                days,
                from_days,
                uso: certs::Uso::Gateway,
            },
            &key,
            issued.then_some((&self.ca_cert, &self.ca_key)),
            chrono::Utc::now(),
        )?;
        self.save(name, &key, &cert)
    }

    /// [`Pki::issue`], panicking (for tests).
    pub fn make(&self, name: &str, cn: &str, issued: bool, days: u32, from_days: i64) -> KeyPair {
        self.issue(name, cn, issued, days, from_days)
            .unwrap_or_else(|e| panic!("certificate for {cn}: {e}"))
    }

    /// The pair `name` this CA issued earlier when it is in the directory, else a new one
    /// issued by the CA (valid 30 days from yesterday).
    pub fn issued_once(&self, name: &str, cn: &str) -> Result<KeyPair, KitError> {
        let kp = self.pair(name);
        if !self.made && kp.key.is_file() && kp.cert.is_file() {
            let (_, cert) = kp.read()?;
            if cert.verify(&self.ca_key)? {
                return Ok(kp);
            }
        }
        self.issue(name, cn, true, 30, -1)
    }

    /// `key` and `cert` written as `<name>.key` (PKCS#8) and `<name>.crt` beside the CA.
    pub fn save(&self, name: &str, key: &PKey<Private>, cert: &X509) -> Result<KeyPair, KitError> {
        let kp = self.pair(name);
        std::fs::write(&kp.key, key.private_key_to_pem_pkcs8()?).map_err(io(&kp.key))?;
        std::fs::write(&kp.cert, cert.to_pem()?).map_err(io(&kp.cert))?;
        Ok(kp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_pki_is_read_back_and_reissues_nothing() {
        let dir = TempDir::new("kit-pki");
        let first = Pki::in_dir(&dir.0, "kit CA").unwrap();
        let a = first.issued_once("gw", "GW").unwrap();
        let pem = std::fs::read(&a.cert).unwrap();
        let again = Pki::in_dir(&dir.0, "kit CA").unwrap();
        assert_eq!(
            again.ca_cert.to_pem().unwrap(),
            first.ca_cert.to_pem().unwrap()
        );
        again.issued_once("gw", "GW").unwrap();
        assert_eq!(std::fs::read(&a.cert).unwrap(), pem, "kept");
        // A certificate another CA issued is replaced.
        let other = TempDir::new("kit-pki-other");
        let stranger = Pki::in_dir(&other.0, "other CA").unwrap();
        let s = stranger.issue("gw", "GW", true, 30, -1).unwrap();
        std::fs::copy(&s.cert, &a.cert).unwrap();
        std::fs::copy(&s.key, &a.key).unwrap();
        let b = again.issued_once("gw", "GW").unwrap();
        let (_, cert) = b.read().unwrap();
        assert!(cert.verify(&again.ca_key).unwrap());
    }

    #[test]
    fn free_ports_are_loopback_and_temp_dirs_go_away() {
        assert!(free_loopback().unwrap().ip().is_loopback());
        let mut v = free_ports(8);
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 8, "distinct");
        let p = {
            let d = TempDir::new("kit");
            assert!(d.path().is_dir());
            d.0.clone()
        };
        assert!(!p.exists());
    }
}
