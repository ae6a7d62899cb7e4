//! Partners and the registry, live: partners added and removed at run time (kept in the store),
//! and SIGHUP's reload of the configuration's registry, CAs and our own key.

use std::sync::Arc;

use super::{load_cas, GatewayError, PartnerError, Shared};
use crate::config::Config;
use crate::registry::Soggetto;
use crate::tls::{Identity, Trust};

/// Checks what a partner brings: a name that can form identifiers, a URL, a certificate valid
/// at `now`.
pub fn controlla_partner(
    s: &Soggetto,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), PartnerError> {
    if s.nome.is_empty() || !s.nome.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(PartnerError::Nome(s.nome.clone()));
    }
    if let Some(url) = &s.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(PartnerError::Url(url.clone()));
        }
    }
    if let Some(pem) = &s.cert {
        let certs = crate::wssec::pki::leggi_pem(pem.as_bytes())
            .map_err(|e| PartnerError::Certificato(e.to_string()))?;
        crate::wssec::pki::controlla(&certs[0], now)
            .map_err(|e| PartnerError::Certificato(e.to_string()))?;
    }
    Ok(())
}

impl Shared {
    /// Adds (or replaces) a partner in the store and takes it into use at once. The certificate
    /// must be readable and valid now; the new registry must be consistent.
    pub async fn aggiungi_partner(&self, s: Soggetto) -> Result<(), GatewayError> {
        controlla_partner(&s, self.now().to_utc())?;
        let mut partners = self.store.partners().await?;
        partners.retain(|p| !(p.tipo == s.tipo && p.nome == s.nome));
        partners.push(s.clone());
        // Refuse before storing anything that would not build.
        self.config.build_registry_with(&partners)?;
        self.store.put_partner(&s).await?;
        self.store.flush().await?;
        self.reload_partners().await?;
        tracing::info!(partner = %format!("{}/{}", s.tipo, s.nome), "partner added");
        Ok(())
    }

    /// Removes a partner added at run time; false when there was none.
    pub async fn rimuovi_partner(&self, tipo: &str, nome: &str) -> Result<bool, GatewayError> {
        let removed = self.store.remove_partner(tipo, nome).await?;
        if removed {
            self.store.flush().await?;
            self.reload_partners().await?;
            tracing::info!(partner = %format!("{tipo}/{nome}"), "partner removed");
        }
        Ok(removed)
    }

    /// Rebuilds the registry from the configuration and the partners in the store, live.
    pub async fn reload_partners(&self) -> Result<(), GatewayError> {
        let partners = self.store.partners().await?;
        let (config, cas) = self
            .reloadable
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let registry = config.build_registry_with(&partners)?;
        self.trust.set(Trust::new(cas, &registry));
        self.set_registry(registry);
        Ok(())
    }

    /// SIGHUP: takes the registry (partners, their certificates, servizi), the CAs and our own
    /// key and certificate from a new configuration, live: connections stay, new handshakes
    /// and buste use them. What only a restart changes (listeners, store, our soggetto,
    /// limits…) is kept as it was and named in the returned warnings.
    pub async fn reload(&self, nuova: Config) -> Result<Vec<String>, GatewayError> {
        let partners = self.store.partners().await?;
        let registry = nuova.build_registry_with(&partners)?;
        let cas = load_cas(&nuova)?;
        let mut avvisi = Vec::new();
        let (a, b) = (
            serde_json::to_value(&self.config).unwrap_or_default(),
            serde_json::to_value(&nuova).unwrap_or_default(),
        );
        if let (Some(a), Some(b)) = (a.as_object(), b.as_object()) {
            for (k, v) in a {
                if k != "registry" && b.get(k) != Some(v) {
                    avvisi.push(format!(
                        "'{k}' changed: it takes effect at the next restart"
                    ));
                }
            }
            // The CAs are reloaded; the rest of [tls] is not.
            let tls = |o: &serde_json::Map<String, serde_json::Value>| {
                let mut t = o.get("tls").cloned().unwrap_or_default();
                if let Some(t) = t.as_object_mut() {
                    for k in ["ca", "cert", "key"] {
                        t.remove(k);
                    }
                }
                t
            };
            if tls(a) == tls(b) {
                avvisi.retain(|w| !w.starts_with("'tls'"));
            }
        }
        if self.chiavi.tls.is_none() && nuova.tls_on() {
            avvisi.push("'tls' turned on: it takes effect at the next restart".into());
        }
        // Our key and certificate, read again (a rotation): TLS and signatures take them.
        if let (Some(chiave), Some(c), Some(k)) =
            (&self.chiavi.tls, &nuova.tls.cert, &nuova.tls.key)
        {
            let me = Identity::load(c, k)?;
            if self.config.firma_on() && me.key.id() != openssl::pkey::Id::RSA {
                return Err(GatewayError::ChiaveNonRsa);
            }
            crate::wssec::pki::controlla(&me.cert, self.now().to_utc())
                .map_err(|e| GatewayError::Certificato(e.to_string()))?;
            chiave.set(&me)?;
            *self
                .chiavi
                .identity
                .write()
                .unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(me));
        }
        self.trust.set(Trust::new(cas.clone(), &registry));
        self.set_registry(registry);
        *self.reloadable.write().unwrap_or_else(|e| e.into_inner()) = (nuova, cas);
        Ok(avvisi)
    }
}

/// In a cluster, the partners another node (or `pdd partner add` on the shared database)
/// added or removed reach this node: every `[cluster] poll_secs` it reads them, and rebuilds
/// its registry and trust when they changed (certificate rotation included). An embedded
/// store has one process: nothing to poll.
pub async fn worker(s: Arc<Shared>, stop: impl std::future::Future<Output = ()>) {
    if s.config.store.engine != crate::config::Engine::Postgres {
        return;
    }
    tokio::pin!(stop);
    let every = std::time::Duration::from_secs(s.config.cluster.poll_secs.max(1));
    let mut visti: Option<Vec<Soggetto>> = None;
    loop {
        match s.store.partners().await {
            Ok(p) => {
                if visti.as_ref().is_some_and(|v| *v != p) {
                    match s.reload_partners().await {
                        Ok(()) => tracing::info!(
                            partners = p.len(),
                            "partners changed on the shared store: registry rebuilt"
                        ),
                        Err(e) => tracing::error!(
                            error = %e,
                            "partners changed on the shared store, but the registry cannot be rebuilt: the previous one stays"
                        ),
                    }
                }
                visti = Some(p);
            }
            Err(e) => tracing::debug!(error = %e, "partners not read (the store is unavailable)"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
    }
}
