//! The gateway: the porta applicativa and porta delegata over the protocol core, the registry
//! and the store. Transport-free: the shell (`server`) hands it bytes and the authenticated
//! peer, and sends back an [`Answer`]; outbound HTTP goes through a [`Transport`] the shell
//! provides.
//!
//! [`Gateway`] is the composition root of its parts, each a struct with its own state over the
//! state they share ([`Shared`]): the [`PortaApplicativa`], the [`PortaDelegata`], the
//! [`Outbox`], the validity sweeper ([`Scadenze`]), the store's care ([`Care`]) and the
//! [`ReadApi`].

pub mod api;
pub mod care;
pub mod diagnostici;
mod error;
mod ids;
pub mod limits;
pub mod metrics;
pub mod outbox;
mod pa;
pub mod partners;
mod pd;
pub mod scadenze;
mod security;
pub mod tracce;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, FixedOffset};

pub use api::ReadApi;
pub use care::Care;
pub use error::{eccezione_firma, GatewayError, HttpRefusal, PartnerError, PdError};
pub use ids::IdGenerator;
pub use outbox::Outbox;
pub use pa::PortaApplicativa;
pub use partners::controlla_partner;
pub use pd::{PortaDelegata, RichiestaPd};
pub use scadenze::Scadenze;

use crate::clock::Clock;
use crate::config::Config;
use crate::egov::{Busta, Eccezione, Parte};
use crate::registry::{Registry, Soggetto};
use crate::store::{Direction, Exchange, Store, StoreError};
use crate::tls::{Identity, OwnKey, Trust, TrustStore};
use crate::xml::Limits;

/// What goes back on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// A SOAP message, or empty (oneway).
    pub body: String,
    /// Extra HTTP headers (integration headers towards a local system).
    pub headers: Vec<(String, String)>,
    /// A SOAP with Attachments message: what goes on the wire instead of `body` (which stays
    /// the root part, the envelope).
    pub mime: Option<crate::mime::Corpo>,
}

impl Answer {
    pub fn soap(status: u16, body: String) -> Answer {
        Answer {
            status,
            body,
            headers: Vec::new(),
            mime: None,
        }
    }

    /// An envelope with attachments (none: a plain SOAP answer).
    pub fn con_allegati(status: u16, body: String, allegati: &[crate::mime::Parte]) -> Answer {
        let mime = (!allegati.is_empty()).then(|| crate::mime::Corpo::scrivi(&body, allegati));
        Answer {
            mime,
            ..Answer::soap(status, body)
        }
    }

    pub fn empty() -> Answer {
        Answer::soap(200, String::new())
    }
}

/// Who is on the other end of a request, as the transport authenticated it.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The client certificate presented in the TLS handshake (verified by then).
    pub cert: Option<openssl::x509::X509>,
    /// The listener it came through.
    pub listener: Listener,
}

/// The listeners of a gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The main one: partners (over TLS), or everything on plain HTTP.
    Main,
    /// The plain loopback listener for local systems, the CLI and health checks.
    Local,
    /// The read API's own listener.
    Api,
}

pub use crate::transport::{Transport, TransportError, TransportResponse};

/// Makes the outbound transport from the TLS configuration the gateway builds (our key
/// presented, partners' certificates checked) and the largest answer to read.
pub type TransportFactory<'a> = &'a dyn Fn(rustls::ClientConfig, usize) -> Arc<dyn Transport>;

/// Our key and certificate, as signatures and TLS use them.
struct Keys {
    /// For signing buste; replaced on SIGHUP when the files changed.
    identity: RwLock<Option<Arc<Identity>>>,
    /// The same, as TLS presents them (both ways), swappable.
    tls: Option<Arc<OwnKey>>,
}

/// What the gateway's parts share.
pub struct Shared {
    pub config: Config,
    registry: RwLock<Arc<Registry>>,
    /// The registry's part of the configuration and the CAs: what SIGHUP reloads.
    reloadable: RwLock<(Config, Vec<openssl::x509::X509>)>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// The clock, when tests may move it (`PDD_TEST_CLOCK=1`, `POST /admin/clock`).
    pub test_clock: Option<Arc<crate::clock::OffsetClock>>,
    ids: IdGenerator,
    pub transport: Arc<dyn Transport>,
    pub limits: Limits,
    chiavi: Keys,
    /// The CAs of the configuration.
    pub cas: Vec<openssl::x509::X509>,
    /// What the TLS verifiers and the signature checks trust; follows the registry.
    pub trust: Arc<TrustStore>,
    /// Counters and latency histograms for `GET /metrics`.
    pub metrics: metrics::Metrics,
    /// Wakes the outbox when forwards are queued.
    pub outbox_notify: tokio::sync::Notify,
    /// This node's name: the holder of its leases (a cluster runs a destination's queue, the
    /// sweeper and retention on one node at a time), in logs, metrics and /health.
    pub nodo: String,
}

/// A gateway: its parts over their shared state. It dereferences to [`Shared`].
pub struct Gateway {
    pub shared: Arc<Shared>,
    pub pa: PortaApplicativa,
    pub pd: Arc<PortaDelegata>,
    pub outbox: Arc<Outbox>,
    pub scadenze: Arc<Scadenze>,
    pub care: Arc<Care>,
    pub api: ReadApi,
}

impl std::ops::Deref for Gateway {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Reads the PEM certificates of the `[tls] ca` files.
pub fn load_cas(config: &Config) -> Result<Vec<openssl::x509::X509>, GatewayError> {
    let mut cas = Vec::new();
    for p in &config.tls.ca {
        let bytes = std::fs::read(p).map_err(|e| GatewayError::Ca {
            path: p.clone(),
            err: e.to_string(),
        })?;
        cas.extend(
            crate::wssec::pki::leggi_pem(&bytes).map_err(|e| GatewayError::Ca {
                path: p.clone(),
                err: e.to_string(),
            })?,
        );
    }
    Ok(cas)
}

impl Gateway {
    /// A gateway over a registry (the configured one, completed by the partners in the store).
    /// `transport` makes the outbound client from the TLS configuration built here.
    pub fn new(
        config: Config,
        registry: Registry,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        transport: TransportFactory<'_>,
    ) -> Result<Gateway, GatewayError> {
        Gateway::con_orologio(config, registry, store, clock, None, transport)
    }

    /// [`Gateway::new`] with a clock tests may move through `POST /admin/clock`.
    pub fn con_orologio(
        config: Config,
        registry: Registry,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        test_clock: Option<Arc<crate::clock::OffsetClock>>,
        transport: TransportFactory<'_>,
    ) -> Result<Gateway, GatewayError> {
        let limits = Limits {
            max_depth: config.limits.max_xml_depth,
            ..Limits::default()
        };
        let identity = match (&config.tls.cert, &config.tls.key) {
            (Some(c), Some(k)) => Some(Arc::new(Identity::load(c, k)?)),
            _ => None,
        };
        // Our signatures are RSA-SHA256: another key type would sign under a false label.
        if let Some(me) = identity.as_ref().filter(|_| config.firma_on()) {
            if me.key.id() != openssl::pkey::Id::RSA {
                return Err(GatewayError::ChiaveNonRsa);
            }
        }
        let cas = load_cas(&config)?;
        let trust = Arc::new(TrustStore::new(Trust::new(cas.clone(), &registry)));
        let chiave_tls = match &identity {
            Some(me) => Some(OwnKey::new(me)?),
            None => None,
        };
        let client_tls = crate::tls::client_config(chiave_tls.clone(), &cas, trust.clone())?;
        let shared = Arc::new(Shared {
            ids: IdGenerator::new(config.prefisso_id()),
            transport: transport(client_tls, config.limits.max_body_bytes),
            registry: RwLock::new(Arc::new(registry)),
            reloadable: RwLock::new((config.clone(), cas.clone())),
            store,
            clock,
            test_clock,
            limits,
            chiavi: Keys {
                identity: RwLock::new(identity),
                tls: chiave_tls,
            },
            cas,
            trust,
            metrics: Default::default(),
            outbox_notify: tokio::sync::Notify::new(),
            nodo: config.nome_nodo(),
            config,
        });
        let pd = Arc::new(PortaDelegata::new(shared.clone()));
        Ok(Gateway {
            pa: PortaApplicativa::new(shared.clone()),
            outbox: Arc::new(Outbox::new(shared.clone(), pd.clone())),
            scadenze: Arc::new(Scadenze::new(shared.clone())),
            care: Arc::new(Care::new(shared.clone())),
            api: ReadApi::new(shared.clone()),
            pd,
            shared,
        })
    }
}

impl Shared {
    pub fn registry(&self) -> Arc<Registry> {
        self.registry
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the registry (live, for partner onboarding and reloads).
    fn set_registry(&self, r: Registry) {
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(r);
    }

    /// Our key and certificate now (they change on SIGHUP when the files changed).
    pub fn identita(&self) -> Option<Arc<Identity>> {
        self.chiavi
            .identity
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The porta applicativa's TLS configuration, when TLS is on.
    pub fn server_tls(&self) -> Result<Option<rustls::ServerConfig>, GatewayError> {
        match &self.chiavi.tls {
            Some(me) => Ok(Some(crate::tls::server_config(
                me.clone(),
                &self.cas,
                self.trust.clone(),
                self.config.tls.client_auth,
            )?)),
            None => Ok(None),
        }
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

    /// What the ClicLavoro handler needs of this node.
    pub fn nodo<'a>(&'a self, registry: &'a Registry) -> crate::service::cliclavoro::Ambiente<'a> {
        crate::service::cliclavoro::Ambiente {
            store: self.store.as_ref(),
            limits: self.limits,
            versione: self.config.cliclavoro.versione.fissata(),
            ruolo: self.config.role,
            registry,
            own: self.own().parte(),
            ids: self,
            eures_url: self.config.cliclavoro.eures_url.is_some(),
        }
    }

    /// A new exchange record, numbered, before anything is known of it.
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

    /// Writes the exchange (and settles its duplicate-filter claim) and waits until it is
    /// durable. Nothing is answered before this.
    /// Records an exchange durably, with what it changed (one atomic write).
    async fn commit(
        &self,
        ex: &mut Exchange,
        dup_id: Option<&str>,
        effetti: Option<crate::store::Effetti>,
    ) -> Result<(), StoreError> {
        ex.answered_at = Some(self.now());
        let t = std::time::Instant::now();
        match effetti {
            Some(e) => e.commit(self.store.as_ref(), ex, dup_id).await?,
            None => self.store.commit_exchange(ex, dup_id).await?,
        }
        self.metrics.phase(metrics::Phase::Store, t.elapsed());
        self.metrics.exchange(ex);
        Ok(())
    }
}

#[async_trait]
impl crate::service::cliclavoro::Identificatori for Shared {
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
    ex.collaborazione = b.collaborazione.clone();
}

/// Every eccezione, one per line, for logs and traces.
pub fn elenco(eccezioni: &[Eccezione]) -> String {
    eccezioni
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
