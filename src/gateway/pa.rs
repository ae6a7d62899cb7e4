//! Porta applicativa: a partner's busta in, a synchronous answer out (busta-egov.md §3.1). The
//! pipeline, step by step ([`PortaApplicativa::elabora`]): read the envelope, judge the busta,
//! authenticate and authorise, take a received error busta as such, find the servizio, claim
//! the Identificatore, call the service, build and sign the answer; then record the exchange
//! durably and answer ([`PortaApplicativa::chiudi`]).

use std::sync::Arc;

use tracing::{info, info_span, warn, Instrument};

use super::diagnostici::{self, Diagnostico, Severita};
use super::error::PaError;
use super::limits::InFlight;
use super::metrics::Phase;
use super::{describe, elenco, Answer, Peer, Shared};
use crate::egov::reader::{self, Lettura, Trovata};
use crate::egov::risposte::{self, mittente_sconosciuto};
use crate::egov::validate::{self, Contesto, Giudizio};
use crate::egov::{manifest, Busta, Codice, Eccezione, Profilo, ProfiloGestione};
use crate::registry::{Registry, Servizio};
use crate::service::{self, Chiamata, Reply, ServiceError};
use crate::soap::{self, Envelope, SoapError};
use crate::store::{Claim, Direction, Exchange, Outcome};

/// The porta applicativa, with the limits that protect it.
pub struct PortaApplicativa {
    s: Arc<Shared>,
    /// Exchanges in progress, by partner (`[limits] partner_concurrency`).
    pub in_flight: InFlight,
    /// Room for request bodies in progress (`[limits] max_bytes_in_flight`), shared among
    /// partners and local systems.
    pub body_budget: Arc<super::limits::BudgetCorpi>,
    /// Tests of lost answers only (`PDD_TEST_KILL_AFTER_COMMIT=N`): the process kills itself
    /// (SIGKILL) once the N-th exchange is durable, before its answer leaves.
    uccidi_dopo: Option<u64>,
    registrati: std::sync::atomic::AtomicU64,
}

/// A busta that could not be processed: the request busta when one was read, and why.
struct Refusal {
    busta: Option<Busta>,
    errore: PaError,
}

impl From<PaError> for Refusal {
    fn from(errore: PaError) -> Refusal {
        Refusal {
            busta: None,
            errore,
        }
    }
}

/// What the porta answers when the busta was processed.
struct Risposta {
    status: u16,
    /// A SOAP message, or empty (oneway, and a received error busta).
    body: String,
    /// The SOAP with Attachments message around `body`, when the service answered with parts.
    mime: Option<crate::mime::Corpo>,
    outcome: Outcome,
    note: Option<String>,
    /// The Identificatore claimed in the duplicate filter, settled with the record.
    dup_id: Option<String>,
    response_id: Option<String>,
    /// INFO and LIEVE eccezioni that ride along; or those of a received error busta.
    eccezioni: Vec<Eccezione>,
    /// A diagnostic to record after the exchange.
    diagnostico: Option<Diagnostico>,
    /// What the service changed, written with the exchange's record.
    effetti: Option<crate::store::Effetti>,
}

impl Risposta {
    fn vuota(outcome: Outcome, note: Option<String>) -> Risposta {
        Risposta {
            status: 200,
            body: String::new(),
            mime: None,
            outcome,
            note,
            dup_id: None,
            response_id: None,
            eccezioni: Vec::new(),
            diagnostico: None,
            effetti: None,
        }
    }
}

/// The busta judged acceptable: the eccezioni that ride along, and the sender's profile.
struct Judged {
    info: Vec<Eccezione>,
    profilo: ProfiloGestione,
}

/// The duplicate filter's verdict on a busta that passed the checks.
enum ClaimOutcome {
    /// Processed from here; the Identificatore, when filtered, is ours until settled.
    Nuovo(Option<String>),
    /// A repeated oneway under eGov 1.1: absorbed.
    Assorbito(u64),
}

impl PortaApplicativa {
    pub(super) fn new(s: Arc<Shared>) -> PortaApplicativa {
        PortaApplicativa {
            body_budget: Arc::new(super::limits::BudgetCorpi::new(
                s.config.limits.max_bytes_in_flight as u64,
                s.config.limits.partner_bytes_in_flight as u64,
                s.config.limits.reserve_bytes_in_flight as u64,
                s.config.limits.max_body_bytes as u64,
            )),
            in_flight: InFlight::default(),
            uccidi_dopo: std::env::var("PDD_TEST_KILL_AFTER_COMMIT")
                .ok()
                .and_then(|v| v.parse().ok()),
            registrati: Default::default(),
            s,
        }
    }

    /// A message posted to the porta applicativa by `peer`: its answer, after the exchange is
    /// recorded durably.
    pub async fn ricevi(&self, raw: &[u8], peer: &Peer) -> Answer {
        self.ricevi_in(raw, None, peer).await
    }

    /// [`PortaApplicativa::ricevi`] for a message with its HTTP Content-Type: SOAP 1.1 in the
    /// encoding its `charset` or XML declaration names (processed as UTF-8, recorded as
    /// received), or SOAP with Attachments (`multipart/related`).
    pub async fn ricevi_in(&self, raw: &[u8], content_type: Option<&str>, peer: &Peer) -> Answer {
        let received = self.s.now();
        let mut ex = match self
            .s
            .exchange(Direction::In, received, raw, Some(peer.addr.to_string()))
            .await
        {
            Ok(ex) => ex,
            Err(e) => {
                warn!(error = %e, "store unavailable");
                self.s
                    .diagnostica(Diagnostico::new(
                        Severita::Fatal,
                        "RicezioneBuste",
                        "PDD_STORE",
                        "store non disponibile: messaggio respinto con EGOV_IT_300 senza registrarlo",
                    ))
                    .await;
                return Answer::soap(status_store(&e), risposte::fault_processamento());
            }
        };
        // One span per exchange: every line logged inside carries who and what.
        let span = info_span!(
            "pa",
            seq = ex.seq,
            id = tracing::field::Empty,
            mittente = tracing::field::Empty,
            servizio = tracing::field::Empty,
            azione = tracing::field::Empty
        );
        async {
            let esito = match crate::mime::scomponi(
                content_type.unwrap_or(""),
                raw,
                self.s.config.limits.mime(),
            ) {
                Ok(m) => {
                    self.elabora(&m.testo, m.allegati, &m.difetti, peer, &mut ex, received)
                        .await
                }
                Err(motivo) => {
                    info!(motivo, "unreadable message: Fault EGOV_IT_001");
                    Err(Refusal::from(PaError::Fault001 {
                        motivo,
                        eccezioni: Vec::new(),
                    }))
                }
            };
            self.chiudi(&mut ex, esito).await
        }
        .instrument(span)
        .await
    }

    /// The pipeline, one step a line.
    async fn elabora(
        &self,
        raw: &[u8],
        mut allegati: Vec<crate::mime::Parte>,
        difetti: &[String],
        peer: &Peer,
        ex: &mut Exchange,
        received: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Risposta, Refusal> {
        let env = self.leggi(raw)?;
        non_compresi(&env)?;
        let trovata = cerca_busta(&env)?;
        let busta = trovata.busta.clone();
        annota(ex, &busta);
        let rifiuto = |errore: PaError| Refusal {
            busta: Some(busta.clone()),
            errore,
        };
        let registry = self.s.registry();
        let giudicata = self
            .giudica(&trovata, &registry, received)
            .map_err(&rifiuto)?;
        // SOAP with Attachments: the parts well formed and the Manifest right, the original
        // Body taken back from its part.
        let sbustato = self.manifest(&env, &allegati, difetti).map_err(&rifiuto)?;
        self.s
            .autentica(&busta, &env, peer, &registry, &allegati)
            .map_err(&rifiuto)?;
        // A busta with a ListaEccezioni is an error notification from the partner: recorded
        // with what is wrong in it, not handed to a service (busta-egov.md §2.2.5).
        if let Some(ricevute) = &busta.eccezioni {
            return Ok(errore_ricevuto(&trovata, &env, ricevute, ex));
        }
        let servizio = servizio_di(&busta, &registry).map_err(&rifiuto)?;
        self.correlazione(&busta, servizio)
            .await
            .map_err(&rifiuto)?;
        let sync = busta
            .profilo
            .unwrap_or_else(|| servizio.profilo_per(busta.azione.as_deref()))
            != Profilo::OneWay;
        let dup_id = match self
            .reclama(&busta, servizio, giudicata.profilo, sync, received)
            .await
            .map_err(&rifiuto)?
        {
            ClaimOutcome::Nuovo(id) => id,
            ClaimOutcome::Assorbito(primo) => {
                return Ok(Risposta::vuota(
                    Outcome::Duplicato,
                    Some(format!("duplicato dello scambio {primo}")),
                ))
            }
        };
        // The service sees the original Body where a Manifest stood; the header blocks keep
        // their places (the Body comes after them).
        let env_sbustato;
        let env_servizio: &Envelope<'_> = match &sbustato {
            Some((testo, principale)) => {
                env_sbustato = self.leggi(testo.as_bytes()).map_err(&rifiuto)?;
                // The other parts go to the service; the one that held the Body is in it now.
                allegati.remove(*principale);
                &env_sbustato
            }
            None => &env,
        };
        let chiamata = Chiamata {
            env: env_servizio,
            rimuovi: consumati(&trovata, &env),
            busta: &busta,
            servizio,
            received_at: received,
            allegati: &allegati,
        };
        let mut esito = match self.chiama(servizio, &chiamata).await {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "service failed: EGOV_IT_300");
                // The service did not complete: the sender may retry with the same id.
                self.rilascia(dup_id.as_deref()).await;
                return Err(rifiuto(PaError::processamento("Servizio", e.to_string())));
            }
        };
        let mut r = Risposta {
            status: if esito.fault { 500 } else { 200 },
            note: esito.note.clone(),
            dup_id,
            eccezioni: giudicata.info.clone(),
            effetti: esito.effetti.take(),
            ..Risposta::vuota(Outcome::Ok, None)
        };
        if sync {
            // Every profile but oneway answers with a busta (sync: the response; async: the
            // ricevuta).
            let parti = std::mem::take(&mut esito.allegati);
            match self.risposta(&busta, giudicata.info, &esito, parti).await {
                Ok((id, body, parti)) => {
                    r.response_id = Some(id);
                    r.mime = (!parti.is_empty()).then(|| crate::mime::Corpo::scrivi(&body, &parti));
                    r.body = body;
                }
                Err(e) => {
                    self.rilascia(r.dup_id.as_deref()).await;
                    return Err(rifiuto(e));
                }
            }
        } else {
            r.status = 200;
        }
        Ok(r)
    }

    /// Step: the SOAP 1.1 envelope.
    fn leggi<'a>(&self, raw: &'a [u8]) -> Result<Envelope<'a>, PaError> {
        let t = std::time::Instant::now();
        let parsed = Envelope::parse_con_corpo(raw, self.s.limits);
        self.s.metrics.phase(Phase::Parse, t.elapsed());
        parsed.map_err(|e| match e {
            SoapError::Soap12 => PaError::Soap12,
            e => {
                info!(error = %e, "unreadable message: Fault EGOV_IT_001");
                PaError::Fault001 {
                    motivo: e.to_string(),
                    eccezioni: Vec::new(),
                }
            }
        })
    }

    /// Step (SOAP with Attachments only): defects of the parts (EGOV_IT_003) and the Manifest
    /// against them (003, 118, 119, 120). The envelope with the original Body put back, and
    /// which part held it.
    fn manifest(
        &self,
        env: &Envelope<'_>,
        allegati: &[crate::mime::Parte],
        difetti: &[String],
    ) -> Result<Option<(String, usize)>, PaError> {
        if !difetti.is_empty() {
            info!(difetti = %difetti.join("; "), "attachments refused: EGOV_IT_003");
            let eccezioni = difetti
                .iter()
                .map(|d| Eccezione::grave(Codice::FORMATO_CORPO, format!("Allegati: {d}")))
                .collect();
            return Err(PaError::busta(eccezioni, Some(difetti.join("; "))));
        }
        if allegati.is_empty() {
            return Ok(None);
        }
        let aperto = manifest::apri(env, allegati, self.s.limits).map_err(|eccezioni| {
            info!(eccezioni = %elenco(&eccezioni), "Manifest refused");
            PaError::busta(eccezioni, None)
        })?;
        let testo = format!(
            "{}{}{}",
            &env.src[..env.body_content.start],
            aperto.corpo,
            &env.src[env.body_content.end..]
        );
        Ok(Some((testo, aperto.principale)))
    }

    /// Step: the busta judged against the registry, the clock and the sender's profile.
    fn giudica(
        &self,
        trovata: &Trovata<'_>,
        registry: &Registry,
        received: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<Judged, PaError> {
        let c = &self.s.config;
        let busta = &trovata.busta;
        let pol = validate::politica(
            registry,
            busta.mittente.as_ref(),
            c.busta.profilo,
            c.busta.errori_struttura,
        );
        let locale = |p: &crate::egov::Parte| self.s.is_local(p);
        let ctx = Contesto {
            registry,
            locale: &locale,
            profilo: pol.profilo,
            now: received.naive_local(),
            scadenza_minuti: c.busta.scadenza_minuti,
            tolleranza_futuro_minuti: c.busta.tolleranza_futuro_minuti,
            validazione_id_completa: pol.validazione_id_completa,
            qualificazione: c.busta.qualificazione,
        };
        let t = std::time::Instant::now();
        let giudizio = validate::giudica(trovata, &ctx, pol.errori_struttura);
        self.s.metrics.phase(Phase::Validate, t.elapsed());
        match giudizio {
            Giudizio::Illeggibile(motivo) => Err(PaError::Fault001 {
                motivo,
                eccezioni: Vec::new(),
            }),
            Giudizio::Fault001 { eccezioni, reason } => {
                info!(eccezioni = %elenco(&eccezioni), "broken header structure: Fault EGOV_IT_001");
                Err(PaError::Fault001 {
                    motivo: reason,
                    eccezioni,
                })
            }
            Giudizio::Errore { eccezioni } => {
                info!(eccezioni = %elenco(&eccezioni), "busta refused");
                Err(PaError::busta(eccezioni, None))
            }
            Giudizio::Accettata { eccezioni } => Ok(Judged {
                info: eccezioni,
                profilo: pol.profilo,
            }),
        }
    }

    /// Step: the duplicate filter, always on under Linee Guida 1.1, else when the busta asks
    /// for it.
    async fn reclama(
        &self,
        busta: &Busta,
        servizio: &Servizio,
        profilo: ProfiloGestione,
        sync: bool,
        received: chrono::DateTime<chrono::FixedOffset>,
    ) -> Result<ClaimOutcome, PaError> {
        let filtro = servizio.filtro_duplicati
            && (profilo == ProfiloGestione::LineeGuida11 || busta.inoltro_al_piu_una_volta());
        let Some(id) = busta.id.clone().filter(|_| filtro) else {
            return Ok(ClaimOutcome::Nuovo(None));
        };
        let scade = super::care::scadenza_busta(
            busta,
            self.s.config.busta.scadenza_minuti,
            *received.offset(),
        );
        match self
            .s
            .store
            .claim(&id, received.timestamp_millis(), scade)
            .await
        {
            Ok(Claim::New) => Ok(ClaimOutcome::Nuovo(Some(id))),
            // The first copy is still being processed: its outcome is not known yet (it may
            // fail and be released), so this one is not a duplicate to absorb but a retry
            // that came too early.
            Ok(Claim::Duplicate(d)) if d.seq == 0 => {
                info!("Identificatore being processed by another exchange");
                Err(PaError::processamento(
                    "FiltroDuplicati",
                    "un messaggio con lo stesso Identificatore è in elaborazione: riprovare",
                ))
            }
            Ok(Claim::Duplicate(d)) => {
                if let Err(e) = self.s.store.count_repeat(&id).await {
                    warn!(error = %e, "repeat not counted");
                }
                info!(first_seq = d.seq, "duplicate Identificatore");
                // A repeated oneway is absorbed under eGov 1.1; Linee Guida 1.1 treats every
                // duplicate as an error (GovWay filtroduplicati.generazioneBusteErrore).
                if sync || profilo == ProfiloGestione::LineeGuida11 {
                    Err(PaError::Duplicato { primo: d.seq })
                } else {
                    Ok(ClaimOutcome::Assorbito(d.seq))
                }
            }
            Err(e) => {
                warn!(error = %e, "duplicate filter unavailable");
                Err(PaError::processamento(
                    "FiltroDuplicati",
                    "store non disponibile",
                ))
            }
        }
    }

    /// Gives back a claimed Identificatore (the sender may retry it).
    async fn rilascia(&self, id: Option<&str>) {
        if let Some(id) = id {
            if let Err(e) = self.s.store.release(id).await {
                warn!(error = %e, "claim not released");
            }
        }
    }

    /// Step: the service (a backend, or a built-in handler).
    async fn chiama(&self, servizio: &Servizio, c: &Chiamata<'_>) -> Result<Reply, ServiceError> {
        let t = std::time::Instant::now();
        let esito = match (&servizio.backend, servizio.handler.as_deref()) {
            (Some(url), _) => {
                let timeout =
                    std::time::Duration::from_secs(self.s.config.limits.request_timeout_secs);
                service::backend::call(self.s.transport.as_ref(), url, c, timeout, self.s.limits)
                    .await
            }
            (None, Some("cliclavoro")) => {
                let registry = self.s.registry();
                service::cliclavoro::handle(c, &self.s.nodo(&registry)).await
            }
            (None, Some("echo")) => Ok(service::echo(c)),
            (None, Some(other)) => Err(ServiceError::UnknownHandler(other.to_string())),
            (None, None) => Err(ServiceError::NoHandler(format!(
                "{}/{}",
                servizio.tipo, servizio.nome
            ))),
        };
        self.s.metrics.phase(Phase::Service, t.elapsed());
        esito
    }

    /// Step: the response busta of a synchronous exchange around the service's answer,
    /// signed when signing is on: its Identificatore, the message, and its attachments (with
    /// a Manifest in the Body when the service answered with any).
    async fn risposta(
        &self,
        req: &Busta,
        info: Vec<Eccezione>,
        esito: &Reply,
        allegati: Vec<crate::mime::Parte>,
    ) -> Result<(String, String, Vec<crate::mime::Parte>), PaError> {
        let now = self.s.now();
        let responder = self.responder(req);
        let id = self
            .s
            .new_id(&responder, now)
            .await
            .map_err(PaError::Store)?;
        let mut h = risposte::intestazione_risposta(
            req,
            responder.parte(),
            req.mittente.clone().unwrap_or_else(mittente_sconosciuto),
            id.clone(),
            now.naive_local(),
            self.s.config.busta.tempo,
        );
        if !info.is_empty() {
            h.eccezioni = Some(info);
        }
        let header = crate::egov::writer::write(&h);
        let (msg, parti) = if allegati.is_empty() {
            (
                soap::envelope_ns(&[&header], &esito.body, &esito.body_ns),
                Vec::new(),
            )
        } else {
            let (descrizione, parti) = manifest::imbusta(
                &esito.body,
                &esito.body_ns,
                allegati,
                manifest::Ruolo::Risposta,
                &crate::mime::content_id("risposta"),
            );
            (soap::envelope(&[&header], &descrizione), parti)
        };
        let firmato = self
            .s
            .firma_con_allegati(msg, req.mittente.as_ref(), &parti)
            .map_err(PaError::Firma)?;
        Ok((id, firmato, parti))
    }

    /// The soggetto that answers a busta: its destinatario when hosted here, else our own.
    fn responder(&self, req: &Busta) -> crate::registry::Soggetto {
        let registry = self.s.registry();
        req.destinatario
            .as_ref()
            .filter(|d| self.s.is_local(d))
            .and_then(|d| registry.soggetto(d).cloned())
            .unwrap_or_else(|| self.s.own())
    }

    /// The error busta answering `req` (signed when signing is on).
    async fn busta_errore(&self, req: &Busta, e: &PaError) -> Result<(String, String), PaError> {
        let now = self.s.now();
        let responder = self.responder(req);
        let registry = self.s.registry();
        let destinatario = req
            .mittente
            .clone()
            .filter(|m| registry.soggetto(m).is_some())
            .unwrap_or_else(mittente_sconosciuto);
        let id = self
            .s
            .new_id(&responder, now)
            .await
            .map_err(PaError::Store)?;
        let h = risposte::intestazione_risposta(
            req,
            responder.parte(),
            destinatario,
            id.clone(),
            now.naive_local(),
            self.s.config.busta.tempo,
        );
        let body = risposte::busta_errore(h, e.eccezioni(), e.dettaglio_xml().as_deref());
        let verso = req.mittente.clone();
        Ok((
            id,
            self.s.firma(body, verso.as_ref()).map_err(PaError::Firma)?,
        ))
    }

    /// Records the exchange durably, then answers: the service's answer, or the answer an
    /// error calls for (the one place a [`PaError`] becomes a message).
    async fn chiudi(&self, ex: &mut Exchange, esito: Result<Risposta, Refusal>) -> Answer {
        let r = match esito {
            Ok(r) => r,
            Err(Refusal { busta, errore }) => self.risposta_di_errore(busta.as_ref(), errore).await,
        };
        ex.http_status = r.status;
        ex.outcome = r.outcome;
        ex.response_id = r.response_id.or(ex.response_id.take());
        if !r.eccezioni.is_empty() {
            ex.eccezioni = r.eccezioni;
        }
        if ex.note.is_none() {
            ex.note = r.note;
        }
        ex.response = match &r.mime {
            Some(m) => m.corpo.to_vec(),
            None => r.body.as_bytes().to_vec(),
        };
        let inoltri = r.effetti.as_ref().is_some_and(|e| e.inoltri());
        if let Err(e) = self.s.commit(ex, r.dup_id.as_deref(), r.effetti).await {
            warn!(error = %e, "exchange not stored: answering EGOV_IT_300");
            self.rilascia(r.dup_id.as_deref()).await;
            self.s
                .diagnostica(
                    Diagnostico::new(
                        Severita::Fatal,
                        "RicezioneBuste",
                        "PDD_STORE",
                        "scambio non registrato (store non disponibile): risposto EGOV_IT_300",
                    )
                    .scambio(ex.seq, ex.request_id.as_deref()),
                )
                .await;
            return Answer::soap(status_store(&e), risposte::fault_processamento());
        }
        if let Some(n) = self.uccidi_dopo {
            let fatti = self
                .registrati
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                + 1;
            if fatti == n {
                warn!("PDD_TEST_KILL_AFTER_COMMIT: exchange durable, dying before its answer");
                // SAFETY: sends a signal to this very process.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }
        if inoltri {
            // New forwards wait in the outbox: wake it.
            self.s.outbox_notify.notify_one();
        }
        if let Some(d) = r.diagnostico {
            self.s
                .diagnostica(d.scambio(ex.seq, ex.request_id.as_deref()))
                .await;
        }
        if let Some(d) = diagnostici::porta_applicativa(ex) {
            self.s.diagnostica(d).await;
        }
        info!(
            outcome = ex.outcome.as_str(),
            status = ex.http_status,
            mittente = ex.mittente.as_deref().unwrap_or("-"),
            servizio = ex.servizio.as_deref().unwrap_or("-"),
            azione = ex.azione.as_deref().unwrap_or("-"),
            "exchange"
        );
        Answer {
            mime: r.mime,
            ..Answer::soap(r.status, r.body)
        }
    }

    /// What an error answers: a bare Fault, or an error busta when a busta was read. Our
    /// signature failing is never answered unsigned: a processing Fault, and a diagnostic.
    async fn risposta_di_errore(&self, busta: Option<&Busta>, errore: PaError) -> Risposta {
        let errore = match (errore.fault(), busta) {
            (None, Some(req)) => match self.busta_errore(req, &errore).await {
                Ok((id, body)) => {
                    return Risposta {
                        status: 500,
                        body,
                        mime: None,
                        outcome: errore.outcome(),
                        note: errore.nota(),
                        dup_id: None,
                        response_id: Some(id),
                        eccezioni: errore.eccezioni(),
                        diagnostico: None,
                        effetti: None,
                    }
                }
                Err(e) => e,
            },
            _ => errore,
        };
        let diagnostico = match &errore {
            PaError::Firma(e) => {
                warn!(error = %e, "answer not signed: Fault EGOV_IT_300 instead");
                Some(Diagnostico::new(
                    Severita::Fatal,
                    "RicezioneBuste",
                    "PDD_FIRMA",
                    "risposta non firmata (firma non riuscita): risposto EGOV_IT_300",
                ))
            }
            PaError::Store(e) => {
                warn!(error = %e, "store unavailable: Fault EGOV_IT_300");
                None
            }
            _ => None,
        };
        // The database out of reach is a passing state: 503 tells a load balancer and the
        // sender to try again (another node, or later); the Fault is the same EGOV_IT_300.
        let status = match &errore {
            PaError::Store(e) => status_store(e),
            _ => 500,
        };
        Risposta {
            status,
            body: errore.fault().unwrap_or_else(risposte::fault_processamento),
            mime: None,
            outcome: errore.outcome(),
            note: errore.nota(),
            dup_id: None,
            response_id: None,
            eccezioni: errore.eccezioni(),
            diagnostico,
            effetti: None,
        }
    }
}

/// The HTTP status of a Fault for a store failure: 503 (try again: another node, or later)
/// while the database is out of reach, 500 otherwise.
fn status_store(e: &crate::store::StoreError) -> u16 {
    match e {
        crate::store::StoreError::Unavailable(_) => 503,
        _ => 500,
    }
}

/// Step: SOAP 1.1 §4.2.3: a header entry meant for us (no actor, or the `next` actor) with
/// `mustUnderstand="1"` must be one we process: the busta e-Gov and WS-Security. Any other is
/// answered with a MustUnderstand Fault, and the message is not processed. Entries for the
/// porta di dominio's actor are the busta reader's to judge (a wrong namespace there is
/// EGOV_IT_002, as GovWay answers); entries for other actors are not ours.
fn non_compresi(env: &Envelope<'_>) -> Result<(), PaError> {
    const NEXT: &str = "http://schemas.xmlsoap.org/soap/actor/next";
    for h in &env.header_blocks {
        let mu = h
            .attr_ns(soap::SOAP11_NS, "mustUnderstand")
            .map(str::trim)
            .is_some_and(|v| v == "1" || v == "true");
        let per_noi = h
            .attr_ns(soap::SOAP11_NS, "actor")
            .map(str::trim)
            .is_none_or(|a| a.is_empty() || a == NEXT);
        // WS-Security of any version is ours to judge: an older draft's header is refused by
        // the signature policy (EGOV_IT_200), as a partner expects, not as not understood.
        let compreso = h.is(crate::egov::NS_BUSTA, "Intestazione")
            || (h.local == "Security"
                && h.ns.as_deref().is_some_and(|n| {
                    n == crate::wssec::dsig::NS_WSSE
                        || n.starts_with("http://schemas.xmlsoap.org/ws/200")
                }));
        if mu && per_noi && !compreso {
            let nome = format!("{{{}}}{}", h.ns.as_deref().unwrap_or(""), h.local);
            info!(header = %nome, "mustUnderstand header not understood: MustUnderstand Fault");
            return Err(PaError::MustUnderstand(nome));
        }
    }
    Ok(())
}

/// Step: the busta e-Gov among the header blocks.
fn cerca_busta<'e>(env: &'e Envelope<'_>) -> Result<Trovata<'e>, PaError> {
    match reader::leggi(&env.header_blocks) {
        Lettura::Assente => {
            info!("no busta e-Gov header: Fault EGOV_IT_001");
            Err(PaError::Fault001 {
                motivo: "busta e-Gov assente".into(),
                eccezioni: Vec::new(),
            })
        }
        Lettura::Trovata(t) => Ok(*t),
    }
}

/// The busta's fields into the record and the exchange's span.
fn annota(ex: &mut Exchange, busta: &Busta) {
    describe(ex, busta);
    let span = tracing::Span::current();
    for (campo, valore) in [
        ("id", &ex.request_id),
        ("mittente", &ex.mittente),
        ("servizio", &ex.servizio),
        ("azione", &ex.azione),
    ] {
        if let Some(v) = valore {
            span.record(campo, v.as_str());
        }
    }
}

/// Step: the servizio the busta calls. Validation guarantees a registered one; this is a
/// safety net.
fn servizio_di<'r>(busta: &Busta, registry: &'r Registry) -> Result<&'r Servizio, PaError> {
    busta
        .servizio
        .as_ref()
        .and_then(|s| {
            busta
                .destinatario
                .as_ref()
                .and_then(|d| registry.servizio(d, &s.tipo, &s.nome))
        })
        .ok_or_else(|| PaError::processamento("Servizio", "servizio non registrato"))
}

impl PortaApplicativa {
    /// Step: an asynchronous exchange's second message (an azione declared `correlata` to
    /// another) must refer to a message of that azione exchanged here — received (the
    /// asymmetric status request) or sent (the symmetric risposta, at the fruitore) —
    /// (EGOV_IT_109 without a RiferimentoMessaggio, EGOV_IT_111 when it names none or another
    /// azione's), in the same conversation (EGOV_IT_104).
    async fn correlazione(&self, b: &Busta, servizio: &Servizio) -> Result<(), PaError> {
        let Some(correlata) = b
            .azione
            .as_deref()
            .and_then(|a| servizio.azioni.iter().find(|x| x.nome == a))
            .and_then(|a| a.correlata.as_deref())
        else {
            return Ok(());
        };
        let errore =
            |c: Codice, p: &str| PaError::busta(vec![Eccezione::grave(c, p)], None::<String>);
        let Some(rif) = b.riferimento_messaggio.as_deref() else {
            return Err(errore(
                Codice::RIFERIMENTO_NON_DEFINITO,
                "Messaggio/RiferimentoMessaggio",
            ));
        };
        let primo = self
            .s
            .store
            .exchange_by_id(rif)
            .await
            .map_err(PaError::Store)?
            .filter(|e| e.outcome == Outcome::Ok && e.azione.as_deref() == Some(correlata));
        let Some(primo) = primo else {
            return Err(errore(
                Codice::RIFERIMENTO_NON_VALIDO,
                "Messaggio/RiferimentoMessaggio",
            ));
        };
        if primo.collaborazione.is_some() && b.collaborazione != primo.collaborazione {
            return Err(errore(Codice::COLLABORAZIONE, "Collaborazione"));
        }
        Ok(())
    }
}

/// Sbustamento removes the busta and the WS-Security header we processed.
fn consumati(trovata: &Trovata<'_>, env: &Envelope<'_>) -> Vec<std::ops::Range<usize>> {
    let mut r = vec![trovata.span.clone()];
    r.extend(
        env.header_blocks
            .iter()
            .filter(|h| h.is(crate::wssec::dsig::NS_WSSE, "Security"))
            .map(|h| h.span.clone()),
    );
    r
}

/// A partner's error busta, recorded with what is wrong in it.
fn errore_ricevuto(
    trovata: &Trovata<'_>,
    env: &Envelope<'_>,
    ricevute: &[Eccezione],
    ex: &Exchange,
) -> Risposta {
    let mut diag: Vec<Eccezione> = trovata
        .diagnostica
        .iter()
        .map(|p| p.eccezione.clone())
        .collect();
    diag.extend(controlla_fault(env.fault.as_ref()));
    let note = format!(
        "busta di errore ricevuta: {}{}",
        elenco(ricevute),
        if diag.is_empty() {
            String::new()
        } else {
            format!("; anomalie: {}", elenco(&diag))
        }
    );
    info!("{note}");
    Risposta {
        eccezioni: ricevute.iter().cloned().chain(diag).collect(),
        diagnostico: Some(diagnostici::busta_errore_ricevuta(ex, ricevute)),
        ..Risposta::vuota(Outcome::Ok, Some(note))
    }
}

/// The Fault that must accompany a received error busta (GovWay SPCoopValidatoreErrori):
/// missing or wrong, it is reported as EGOV_IT_003.
fn controlla_fault(fault: Option<&soap::Fault>) -> Vec<Eccezione> {
    let Some(f) = fault else {
        return vec![Eccezione::grave(
            Codice::FORMATO_CORPO,
            "ListaEccezioni/SOAPFault",
        )];
    };
    let mut e = Vec::new();
    let local = f.code.rsplit(':').next().unwrap_or("");
    if local != "Client" && local != "Server" {
        e.push(Eccezione::grave(
            Codice::FORMATO_CORPO,
            "ListaEccezioni/SOAPFault/FaultCode",
        ));
    }
    let s = f.string.trim();
    if s != crate::egov::FAULT_VALIDAZIONE && s != crate::egov::FAULT_PROCESSAMENTO {
        e.push(Eccezione::grave(
            Codice::FORMATO_CORPO,
            "ListaEccezioni/SOAPFault/FaultString",
        ));
    }
    e
}
