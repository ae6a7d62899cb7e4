//! The gateway: the porta applicativa and porta delegata pipelines, over the protocol core, the
//! registry and the store. Transport-free: the server hands it bytes and sends back an [`Answer`].

pub mod api;
pub mod conservazione;
pub mod diagnostici;
mod ids;
pub mod limiti;
pub mod metriche;
pub mod outbox;
mod pa;
mod pd;
pub mod risposte;
pub mod scadenze;
pub mod tracce;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};

pub use ids::IdGenerator;
pub use pd::RichiestaPd;

use crate::client::HttpClient;
use crate::clock::Clock;
use crate::config::Config;
use crate::egov::{Busta, Eccezione, Parte};
use crate::registry::{Registry, Soggetto};
use crate::store::{Direction, Exchange, Store, StoreError};
use crate::tls::{Fiducia, Identity, TrustStore};
use crate::xml::Limits;

/// What goes back on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// A SOAP message, or empty (oneway).
    pub body: String,
    /// Extra HTTP headers (integration headers towards a local system).
    pub headers: Vec<(String, String)>,
}

impl Answer {
    pub fn soap(status: u16, body: String) -> Answer {
        Answer {
            status,
            body,
            headers: Vec::new(),
        }
    }
    pub fn empty() -> Answer {
        Answer::soap(200, String::new())
    }
}

pub struct Gateway {
    pub config: Config,
    registry: RwLock<Arc<Registry>>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    ids: IdGenerator,
    pub http: HttpClient,
    pub limits: Limits,
    /// Our key and certificate, when TLS is configured.
    identity: RwLock<Option<Arc<Identity>>>,
    /// The same key and certificate as TLS presents them (both ways), swappable on SIGHUP.
    chiave_tls: Option<Arc<crate::tls::NostraChiave>>,
    /// The CAs of the configuration.
    pub cas: Vec<openssl::x509::X509>,
    /// What the TLS verifiers and the signature checks trust; follows the registry.
    pub trust: Arc<TrustStore>,
    /// Wakes the outbox worker when forwards are queued.
    pub outbox_notify: tokio::sync::Notify,
    /// Receiving nodes whose queue a delivery task is working through.
    pub outbox_attivi: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Serializes read-modify-write of stored moduli (acceptance, the sweeper).
    pub moduli_lock: tokio::sync::Mutex<()>,
    /// Exchanges in progress on the porta applicativa, by partner.
    pub in_corso: limiti::InCorso,
    /// Counters and latency histograms for `GET /metrics`.
    pub metriche: metriche::Metriche,
    /// The registry's part of the configuration, and the CAs: what SIGHUP reloads.
    ricaricabile: RwLock<(Config, Vec<openssl::x509::X509>)>,
    /// Room for request bodies in progress, in KiB (`[limits] max_bytes_in_corso`).
    pub memoria: tokio::sync::Semaphore,
    /// The clock, when tests may move it (`PDD_TEST_CLOCK=1`, `POST /admin/clock`).
    pub orologio_regolabile: Option<Arc<crate::clock::OffsetClock>>,
}

/// Checks what a partner brings: a name that can form identifiers, a usable certificate.
pub fn controlla_partner(s: &crate::registry::Soggetto) -> Result<(), String> {
    if s.nome.is_empty() || !s.nome.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(format!(
            "nome '{}': only letters and digits (it forms the Identificatore)",
            s.nome
        ));
    }
    if let Some(url) = &s.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "url '{url}': use https:// (or http:// on loopback)"
            ));
        }
    }
    if let Some(pem) = &s.cert {
        let certs = crate::wssec::pki::leggi_pem(pem.as_bytes())
            .map_err(|e| format!("certificato: {e}"))?;
        crate::wssec::pki::controlla(&certs[0], chrono::Utc::now())
            .map_err(|e| format!("certificato: {e}"))?;
    }
    Ok(())
}

/// Reads the PEM certificates of the `[tls] ca` files.
pub fn load_cas(config: &Config) -> Result<Vec<openssl::x509::X509>, String> {
    let mut cas = Vec::new();
    for p in &config.tls.ca {
        let bytes = std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()))?;
        cas.extend(
            crate::wssec::pki::leggi_pem(&bytes).map_err(|e| format!("{}: {e}", p.display()))?,
        );
    }
    Ok(cas)
}

impl Gateway {
    /// A gateway over a registry (the configured one, completed by the partners in the store).
    pub fn new(
        config: Config,
        registry: Registry,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, String> {
        let limits = Limits {
            max_depth: config.limits.max_xml_depth,
            ..Limits::default()
        };
        let identity = match (&config.tls.cert, &config.tls.key) {
            (Some(c), Some(k)) => Some(Arc::new(Identity::load(c, k).map_err(|e| e.to_string())?)),
            _ => None,
        };
        // Our signatures are RSA-SHA256: another key type would sign under a false label.
        if let Some(me) = identity.as_ref().filter(|_| config.firma_on()) {
            if me.key.id() != openssl::pkey::Id::RSA {
                return Err(
                    "[tls] key: signing buste (RSA-SHA256) needs an RSA key; set [wssec] firma = false or use an RSA key".into(),
                );
            }
        }
        let cas = load_cas(&config)?;
        let trust = Arc::new(TrustStore::new(Fiducia::new(cas.clone(), &registry)));
        let chiave_tls = match &identity {
            Some(me) => Some(crate::tls::NostraChiave::new(me).map_err(|e| e.to_string())?),
            None => None,
        };
        let client_tls = crate::tls::client_config(chiave_tls.clone(), &cas, trust.clone())
            .map_err(|e| e.to_string())?;
        Ok(Gateway {
            ids: IdGenerator::new(config.soggetto.nodo.clone()),
            http: HttpClient::new(config.limits.max_body_bytes, client_tls),
            registry: RwLock::new(Arc::new(registry)),
            store,
            clock,
            limits,
            identity: RwLock::new(identity),
            chiave_tls,
            cas: cas.clone(),
            trust,
            outbox_notify: tokio::sync::Notify::new(),
            outbox_attivi: Default::default(),
            moduli_lock: tokio::sync::Mutex::new(()),
            in_corso: Default::default(),
            metriche: Default::default(),
            ricaricabile: RwLock::new((config.clone(), cas)),
            memoria: tokio::sync::Semaphore::new(config.limits.max_bytes_in_corso.div_ceil(1024)),
            orologio_regolabile: None,
            config,
        })
    }

    /// What the ClicLavoro handler needs of this node.
    pub fn nodo<'a>(&'a self, registry: &'a Registry) -> crate::service::cliclavoro::Nodo<'a> {
        crate::service::cliclavoro::Nodo {
            store: self.store.as_ref(),
            limits: self.limits,
            versione: self.config.cliclavoro.versione.fissata(),
            ruolo: self.config.role,
            registry,
            own: self.own().parte(),
            ids: self,
            eures_url: self.config.cliclavoro.eures_url.is_some(),
            lock: &self.moduli_lock,
        }
    }

    /// The porta applicativa's TLS configuration, when TLS is on.
    pub fn server_tls(&self) -> Result<Option<rustls::ServerConfig>, String> {
        match &self.chiave_tls {
            Some(me) => crate::tls::server_config(
                me.clone(),
                &self.cas,
                self.trust.clone(),
                self.config.tls.client_auth,
            )
            .map(Some)
            .map_err(|e| e.to_string()),
            None => Ok(None),
        }
    }

    /// Adds (or replaces) a partner in the store and takes it into use at once. The certificate
    /// must be readable and valid now; the new registry must be consistent.
    pub async fn aggiungi_partner(&self, s: crate::registry::Soggetto) -> Result<(), String> {
        controlla_partner(&s)?;
        let mut partners = self.store.partners().await.map_err(|e| e.to_string())?;
        partners.retain(|p| !(p.tipo == s.tipo && p.nome == s.nome));
        partners.push(s.clone());
        // Refuse before storing anything that would not build.
        self.config
            .build_registry_with(&partners)
            .map_err(|e| e.to_string())?;
        self.store
            .put_partner(&s)
            .await
            .map_err(|e| e.to_string())?;
        self.store.flush().await.map_err(|e| e.to_string())?;
        self.reload_partners().await?;
        tracing::info!(partner = %format!("{}/{}", s.tipo, s.nome), "partner added");
        Ok(())
    }

    /// Removes a partner added at run time.
    pub async fn rimuovi_partner(&self, tipo: &str, nome: &str) -> Result<bool, String> {
        let removed = self
            .store
            .remove_partner(tipo, nome)
            .await
            .map_err(|e| e.to_string())?;
        if removed {
            self.store.flush().await.map_err(|e| e.to_string())?;
            self.reload_partners().await?;
            tracing::info!(partner = %format!("{tipo}/{nome}"), "partner removed");
        }
        Ok(removed)
    }

    /// Rebuilds the registry from the configuration and the partners in the store, live.
    pub async fn reload_partners(&self) -> Result<(), String> {
        let partners = self.store.partners().await.map_err(|e| e.to_string())?;
        let (config, cas) = self
            .ricaricabile
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let registry = config
            .build_registry_with(&partners)
            .map_err(|e| e.to_string())?;
        self.trust.set(Fiducia::new(cas, &registry));
        self.set_registry(registry);
        Ok(())
    }

    /// SIGHUP: takes the registry (partners, their certificates, servizi), the CAs and our own
    /// key and certificate from a new configuration, live: connections stay, new handshakes
    /// and buste use them. What only a restart changes (listeners, store, our soggetto,
    /// limits…) is kept as it was and named in the returned warnings.
    pub async fn ricarica(&self, nuova: Config) -> Result<Vec<String>, String> {
        let partners = self.store.partners().await.map_err(|e| e.to_string())?;
        let registry = nuova
            .build_registry_with(&partners)
            .map_err(|e| e.to_string())?;
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
        if self.chiave_tls.is_none() && nuova.tls_on() {
            avvisi.push("'tls' turned on: it takes effect at the next restart".into());
        }
        // Our key and certificate, read again (a rotation): TLS and signatures take them.
        if let (Some(chiave), Some(c), Some(k)) =
            (&self.chiave_tls, &nuova.tls.cert, &nuova.tls.key)
        {
            let me = Identity::load(c, k).map_err(|e| format!("[tls]: {e}"))?;
            if self.config.firma_on() && me.key.id() != openssl::pkey::Id::RSA {
                return Err("[tls] key: signing buste (RSA-SHA256) needs an RSA key".into());
            }
            crate::wssec::pki::controlla(&me.cert, chrono::Utc::now())
                .map_err(|e| format!("[tls] cert: {e}"))?;
            chiave.set(&me).map_err(|e| e.to_string())?;
            *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(me));
        }
        self.trust.set(Fiducia::new(cas.clone(), &registry));
        self.set_registry(registry);
        *self.ricaricabile.write().unwrap_or_else(|e| e.into_inner()) = (nuova, cas);
        Ok(avvisi)
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the registry (live, for partner onboarding and reloads).
    pub fn set_registry(&self, r: Registry) {
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }

    /// Our key and certificate now (they change on SIGHUP when the files changed).
    pub fn identita(&self) -> Option<Arc<Identity>> {
        self.identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Our default soggetto.
    pub fn own(&self) -> Soggetto {
        let reg = self.registry();
        let own = self.config.own();
        reg.soggetto(&own.parte()).cloned().unwrap_or(own)
    }

    /// Whether a party is hosted by this gateway.
    pub fn is_local(&self, p: &Parte) -> bool {
        let own = self.config.own();
        (own.tipo == p.tipo && own.nome == p.nome)
            || self.registry().soggetto(p).is_some_and(|s| s.locale)
    }

    pub fn now(&self) -> DateTime<FixedOffset> {
        self.clock.now()
    }

    /// A new Identificatore owned by `soggetto`.
    pub async fn new_id(
        &self,
        soggetto: &Soggetto,
        now: DateTime<FixedOffset>,
    ) -> Result<String, StoreError> {
        self.ids
            .next(
                self.store.as_ref(),
                &soggetto.nome,
                &soggetto.porta,
                now.naive_local(),
            )
            .await
    }

    fn pd_timeout(&self) -> Duration {
        Duration::from_secs(self.config.porta_delegata.timeout_secs)
    }

    /// Writes the exchange and waits until it is durable. Nothing is answered before this.
    async fn commit(&self, ex: &mut Exchange, dup_id: Option<&str>) -> Result<(), StoreError> {
        ex.answered_at = Some(self.now());
        let t = std::time::Instant::now();
        self.store.put_exchange(ex).await?;
        if let Some(id) = dup_id {
            self.store.settle(id, ex.seq).await?;
        }
        self.store.flush().await?;
        self.metriche.fase(metriche::Fase::Store, t.elapsed());
        self.metriche.scambio(ex);
        Ok(())
    }

    async fn exchange(
        &self,
        direction: Direction,
        received: DateTime<FixedOffset>,
        request: &[u8],
        peer: Option<String>,
    ) -> Result<Exchange, StoreError> {
        let mut ex = Exchange::nuovo(self.store.next_seq().await?, direction, received);
        ex.peer = peer;
        ex.request = request.to_vec();
        Ok(ex)
    }
}

#[async_trait::async_trait]
impl crate::service::cliclavoro::Identificatori for Gateway {
    async fn nuovo(&self) -> Result<(String, DateTime<FixedOffset>), StoreError> {
        let now = self.now();
        let id = self.new_id(&self.own(), now).await?;
        Ok((id, now))
    }
}

/// Copies the header fields of a busta into an exchange record.
fn describe(ex: &mut Exchange, b: &Busta) {
    ex.request_id = b.id.clone();
    ex.mittente = b.mittente.as_ref().map(|p| p.to_string());
    ex.destinatario = b.destinatario.as_ref().map(|p| p.to_string());
    ex.servizio = b
        .servizio
        .as_ref()
        .map(|s| format!("{}/{}", s.tipo, s.nome));
    ex.azione = b.azione.clone();
    ex.profilo = b.profilo.map(|p| p.as_str().to_string());
}

/// Every eccezione, one per line, for logs and traces.
pub fn elenco(eccezioni: &[Eccezione]) -> String {
    eccezioni
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
