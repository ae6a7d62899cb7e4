//! Authentication (the TLS identity is the Mittente), authorization (the partner may call the
//! service), and message security: the WS-Security signature of incoming buste, by partner
//! policy, and our signature on outgoing ones (which fails closed).

use super::error::{eccezione_firma, eccezione_firmatario, PaError};
use super::metrics::Phase;
use super::{Peer, Shared};
use crate::egov::{Busta, Codice, Eccezione, Parte};
use crate::mime::Parte as Parte_;
use crate::registry::{PoliticaFirma, Registry};
use crate::soap::Envelope;
use crate::wssec::dsig::{self, FirmaError};
use crate::wssec::{pki, SignerVerifier};

/// A check that failed: the eccezione to answer, and why (for the operator).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Violation {
    pub eccezione: Eccezione,
    pub motivo: String,
}

impl From<Violation> for PaError {
    fn from(v: Violation) -> PaError {
        tracing::info!(eccezione = %v.eccezione, "{}", v.motivo);
        PaError::busta(vec![v.eccezione], v.motivo)
    }
}

fn non_autorizzato(posizione: &str, motivo: String) -> Violation {
    Violation {
        eccezione: Eccezione::grave(Codice::MITTENTE_NON_AUTORIZZATO, posizione),
        motivo,
    }
}

impl Shared {
    /// The busta's Mittente against the TLS identity, the partner's right to the service, and
    /// its signature by policy.
    pub(super) fn autentica(
        &self,
        b: &Busta,
        env: &Envelope<'_>,
        peer: &Peer,
        registry: &Registry,
        allegati: &[Parte_],
    ) -> Result<(), PaError> {
        let t = std::time::Instant::now();
        let esito = self.autentica_(b, env, peer, registry, allegati);
        self.metrics.phase(Phase::Verify, t.elapsed());
        esito.map_err(PaError::from)
    }

    fn autentica_(
        &self,
        b: &Busta,
        env: &Envelope<'_>,
        peer: &Peer,
        registry: &Registry,
        allegati: &[Parte_],
    ) -> Result<(), Violation> {
        let Some(mittente) = b.mittente.as_ref() else {
            return Ok(());
        };
        let trust = self.trust.get();
        if let Some(cert) = &peer.cert {
            match trust.soggetto(cert, registry, self.now().to_utc()) {
                Some(p) if p.same(mittente) => {}
                Some(p) => {
                    return Err(non_autorizzato(
                        "Mittente",
                        format!(
                        "il certificato TLS è di {p}, ma la busta dichiara il mittente {mittente}"
                    ),
                    ))
                }
                None => {
                    return Err(non_autorizzato(
                        "Mittente",
                        format!(
                        "il certificato TLS (CN {}) non corrisponde ad alcun soggetto registrato",
                        pki::cn(cert).unwrap_or_default()
                    ),
                    ))
                }
            }
        }
        let partner = registry.soggetto(mittente);
        if let (Some(p), Some(s)) = (partner, &b.servizio) {
            if !p.servizi.is_empty() && !p.servizi.contains(&s.nome) {
                return Err(non_autorizzato(
                    "Servizio",
                    format!("{mittente} non è autorizzato al servizio {}", s.nome),
                ));
            }
            let servizio = b
                .destinatario
                .as_ref()
                .and_then(|d| registry.servizio(d, &s.tipo, &s.nome));
            if servizio.is_some_and(|sv| !sv.ammette(mittente)) {
                return Err(non_autorizzato(
                    "Servizio",
                    format!("{mittente} non è tra i fruitori del servizio {}", s.nome),
                ));
            }
        }
        let politica = partner
            .and_then(|p| p.firma)
            .unwrap_or(self.config.wssec.verifica);
        self.verifica_firma(env, mittente, registry, politica, allegati)
    }

    /// Checks a busta's WS-Security signature by policy, and that its certificate may sign for
    /// `parte` (see [`crate::tls::PartnerSigners`]).
    pub(super) fn verifica_firma(
        &self,
        env: &Envelope<'_>,
        parte: &Parte,
        registry: &Registry,
        politica: PoliticaFirma,
        allegati: &[Parte_],
    ) -> Result<(), Violation> {
        let firmata = env
            .header_blocks
            .iter()
            .any(|h| h.is(dsig::NS_WSSE, "Security"));
        if politica == PoliticaFirma::Off || (politica == PoliticaFirma::Optional && !firmata) {
            return Ok(());
        }
        let now = self.now().to_utc();
        let regole = dsig::Regole {
            now,
            tolleranza: chrono::Duration::seconds(self.config.wssec.clock_skew_secs),
            durata_massima: chrono::Duration::seconds(self.config.wssec.timestamp_ttl_secs),
            // Either form, unless the partner's entry asks for the whole Intestazione.
            copertura: registry
                .soggetto(parte)
                .and_then(|s| s.copertura)
                .unwrap_or(dsig::Copertura::IntestazioneMessaggio),
        };
        let firmato =
            dsig::verifica_con_allegati(env.src, env, &regole, allegati).map_err(|e| {
                Violation {
                    eccezione: eccezione_firma(&e),
                    motivo: e.to_string(),
                }
            })?;
        // A partner that signs its attachments signs all of them: with a Manifest the Body is
        // only the list, and the content travels as a part.
        if registry.soggetto(parte).is_some_and(|s| s.firma_allegati) {
            if let Some((i, a)) = allegati
                .iter()
                .enumerate()
                .find(|(i, _)| !firmato.allegati.contains(i))
            {
                let e = FirmaError::Xml(format!(
                    "l'allegato {} non è coperto dalla firma",
                    a.nome(i + 1)
                ));
                return Err(Violation {
                    eccezione: eccezione_firma(&e),
                    motivo: e.to_string(),
                });
            }
        }
        let trust = self.trust.get();
        let firmatari = crate::tls::PartnerSigners {
            trust: &trust,
            registry,
        };
        firmatari
            .verify_signer(parte, &firmato.cert, now)
            .map_err(|e| Violation {
                eccezione: eccezione_firmatario(&e),
                motivo: e.to_string(),
            })
    }

    /// Signs an outgoing message when signing is on. It fails closed: a message that cannot
    /// be signed is not sent unsigned.
    pub(super) fn firma(&self, msg: String, verso: Option<&Parte>) -> Result<String, FirmaError> {
        self.firma_con_allegati(msg, verso, &[])
    }

    /// [`Shared::firma`] for a message with attachments: they are covered too when the
    /// partner's entry asks (`firma_allegati`).
    pub(super) fn firma_con_allegati(
        &self,
        msg: String,
        verso: Option<&Parte>,
        allegati: &[Parte_],
    ) -> Result<String, FirmaError> {
        if !self.config.firma_on() {
            return Ok(msg);
        }
        let me = self.identita().ok_or_else(|| {
            FirmaError::Firma("signing is on but no key and certificate are loaded".into())
        })?;
        let t = std::time::Instant::now();
        let registry = self.registry();
        let partner = verso.and_then(|p| registry.soggetto(p));
        let coperti = if partner.is_some_and(|s| s.firma_allegati) {
            allegati
        } else {
            &[]
        };
        let firmato = dsig::firma_con_allegati(
            &msg,
            &me.key,
            &me.cert,
            self.now().to_utc(),
            chrono::Duration::seconds(self.config.wssec.timestamp_ttl_secs),
            partner
                .and_then(|s| s.copertura)
                .unwrap_or(self.config.wssec.copertura),
            coperti,
        );
        self.metrics.phase(Phase::Sign, t.elapsed());
        firmato
    }
}
