//! Porta applicativa: a partner's busta in, a synchronous answer out (busta-egov.md §3.1).

use tracing::{info, info_span, warn, Instrument};

use super::diagnostici::{self, Diagnostico, Severita};
use super::metriche::Fase;
use super::risposte::{self, mittente_sconosciuto};
use super::{describe, elenco, Answer, Gateway};
use crate::egov::reader::{self, Lettura};
use crate::egov::validate::{self, Contesto, Giudizio};
use crate::egov::{Busta, Codice, Eccezione, Profilo, ProfiloGestione};
use crate::registry::Servizio;
use crate::service::{self, Chiamata, Esito, ServiceError};
use crate::soap::{self, Envelope, FaultCode, SoapError};
use crate::store::{Claim, Direction, Exchange, Outcome};

impl Gateway {
    pub async fn porta_applicativa(&self, raw: &[u8], peer: &crate::server::Peer) -> Answer {
        let received = self.now();
        let mut ex = match self
            .exchange(Direction::In, received, raw, Some(peer.addr.to_string()))
            .await
        {
            Ok(ex) => ex,
            Err(e) => {
                warn!(error = %e, "store unavailable");
                self.diagnostica(Diagnostico::new(
                    Severita::Fatal,
                    "RicezioneBuste",
                    "PDD_STORE",
                    "store non disponibile: messaggio respinto con EGOV_IT_300 senza registrarlo",
                ))
                .await;
                return Answer::soap(500, crate::server::processing_fault());
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
        self.pa_inner(raw, &mut ex, received, peer)
            .instrument(span)
            .await
    }

    async fn pa_inner(
        &self,
        raw: &[u8],
        ex: &mut Exchange,
        received: chrono::DateTime<chrono::FixedOffset>,
        peer: &crate::server::Peer,
    ) -> Answer {
        let t = std::time::Instant::now();
        let parsed = Envelope::parse(raw, self.limits);
        self.metriche.fase(Fase::Parse, t.elapsed());
        let env = match parsed {
            Ok(env) => env,
            Err(SoapError::Soap12) => {
                let body = soap::envelope(
                    &[],
                    &soap::fault(
                        FaultCode::VersionMismatch,
                        "SOAP 1.2 non supportato: la busta e-Gov richiede SOAP 1.1",
                        None,
                        None,
                    ),
                );
                return self
                    .finish(
                        ex,
                        500,
                        body,
                        Outcome::Fault,
                        None,
                        Some("SOAP 1.2 envelope".into()),
                    )
                    .await;
            }
            Err(e) => {
                info!(error = %e, "unreadable message: Fault EGOV_IT_001");
                return self.fault_001(ex, Some(e.to_string())).await;
            }
        };
        let trovata = match reader::leggi(&env.header_blocks) {
            Lettura::Assente => {
                info!("no busta e-Gov header: Fault EGOV_IT_001");
                return self.fault_001(ex, Some("busta e-Gov assente".into())).await;
            }
            Lettura::Trovata(t) => t,
        };
        let busta = trovata.busta.clone();
        describe(ex, &busta);
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
        let registry = self.registry();
        let pol = validate::politica(
            &registry,
            busta.mittente.as_ref(),
            self.config.busta.profilo,
            self.config.busta.errori_struttura,
        );
        let locale = |p: &crate::egov::Parte| self.is_local(p);
        let ctx = Contesto {
            registry: &registry,
            locale: &locale,
            profilo: pol.profilo,
            now: received.naive_local(),
            scadenza_minuti: self.config.busta.scadenza_minuti,
            tolleranza_futuro_minuti: self.config.busta.tolleranza_futuro_minuti,
            validazione_id_completa: pol.validazione_id_completa,
        };
        let t = std::time::Instant::now();
        let giudizio = validate::giudica(&trovata, &ctx, pol.errori_struttura);
        self.metriche.fase(Fase::Validate, t.elapsed());
        let info = match giudizio {
            Giudizio::Illeggibile(reason) => {
                return self.fault_001(ex, Some(reason)).await;
            }
            Giudizio::Fault001 { eccezioni, reason } => {
                info!(eccezioni = %elenco(&eccezioni), "broken header structure: Fault EGOV_IT_001");
                ex.eccezioni = eccezioni;
                return self.fault_001(ex, Some(reason)).await;
            }
            Giudizio::Errore { eccezioni } => {
                info!(eccezioni = %elenco(&eccezioni), "busta refused");
                return self.errore(ex, &busta, eccezioni, None).await;
            }
            Giudizio::Accettata { eccezioni } => eccezioni,
        };
        let profilo = pol.profilo;

        // Authentication, authorization and message security (after validation, as GovWay).
        let t = std::time::Instant::now();
        let sicurezza = self.sicurezza(&busta, &env, peer, &registry);
        self.metriche.fase(Fase::Verify, t.elapsed());
        if let Err((eccezione, note)) = sicurezza {
            info!(eccezione = %eccezione, "{note}");
            return self.errore(ex, &busta, vec![eccezione], Some(&note)).await;
        }

        // A busta with a ListaEccezioni is an error notification from the partner: it is
        // recorded with what is wrong in it, not handed to a service (busta-egov.md §2.2.5).
        if let Some(ricevute) = &busta.eccezioni {
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
            ex.eccezioni = ricevute.iter().cloned().chain(diag).collect();
            let a = self
                .finish(ex, 200, String::new(), Outcome::Ok, None, Some(note))
                .await;
            self.diagnostica(diagnostici::busta_errore_ricevuta(ex, ricevute))
                .await;
            return a;
        }

        let Some(servizio) = busta.servizio.as_ref().and_then(|s| {
            busta
                .destinatario
                .as_ref()
                .and_then(|d| registry.servizio(d, &s.tipo, &s.nome))
        }) else {
            // Validation guarantees a registered service; this is a safety net.
            return self
                .errore(
                    ex,
                    &busta,
                    vec![Eccezione::processamento("Servizio")],
                    Some("servizio non registrato"),
                )
                .await;
        };
        let profilo_coll = busta
            .profilo
            .unwrap_or_else(|| servizio.profilo_per(busta.azione.as_deref()));
        // Every profile but oneway answers with a busta (sync: the response; async: the ricevuta).
        let sync = profilo_coll != Profilo::OneWay;

        // Duplicate filter: always on under Linee Guida 1.1, else when the busta asks for it.
        let filtro = servizio.filtro_duplicati
            && (profilo == ProfiloGestione::LineeGuida11 || busta.inoltro_al_piu_una_volta());
        let dup_id = busta.id.clone().filter(|_| filtro);
        if let Some(id) = &dup_id {
            let scade = super::conservazione::scadenza_busta(
                &busta,
                self.config.busta.scadenza_minuti,
                *received.offset(),
            );
            match self
                .store
                .claim(id, received.timestamp_millis(), scade)
                .await
            {
                Ok(Claim::New) => {}
                // The first copy is still being processed: its outcome is not known yet (it may
                // fail and be released), so this one is not a duplicate to absorb but a retry
                // that came too early.
                Ok(Claim::Duplicate(d)) if d.seq == 0 => {
                    info!("Identificatore being processed by another exchange");
                    return self
                        .errore(
                            ex,
                            &busta,
                            vec![Eccezione::processamento("FiltroDuplicati")],
                            Some("un messaggio con lo stesso Identificatore è in elaborazione: riprovare"),
                        )
                        .await;
                }
                Ok(Claim::Duplicate(d)) => {
                    let _ = self.store.count_repeat(id).await;
                    info!(first_seq = d.seq, "duplicate Identificatore");
                    ex.note = Some(format!("duplicato dello scambio {}", d.seq));
                    // A repeated oneway is absorbed under eGov 1.1; Linee Guida 1.1 treats every
                    // duplicate as an error (GovWay filtroduplicati.generazioneBusteErrore).
                    if sync || profilo == ProfiloGestione::LineeGuida11 {
                        let e = vec![Eccezione::grave(
                            Codice::ID_NON_VALIDO,
                            "Messaggio/Identificatore",
                        )];
                        return self
                            .errore_esito(ex, &busta, e, None, Outcome::Duplicato)
                            .await;
                    }
                    return self
                        .finish(ex, 200, String::new(), Outcome::Duplicato, None, None)
                        .await;
                }
                Err(e) => {
                    warn!(error = %e, "duplicate filter unavailable");
                    return self
                        .errore(
                            ex,
                            &busta,
                            vec![Eccezione::processamento("FiltroDuplicati")],
                            Some("store non disponibile"),
                        )
                        .await;
                }
            }
        }

        let chiamata = Chiamata {
            env: &env,
            rimuovi: {
                // Sbustamento removes the busta and the WS-Security header we processed.
                let mut r = vec![trovata.span.clone()];
                r.extend(
                    env.header_blocks
                        .iter()
                        .filter(|h| h.is(crate::wssec::dsig::NS_WSSE, "Security"))
                        .map(|h| h.span.clone()),
                );
                r
            },
            busta: &busta,
            servizio,
            received_at: received,
        };
        let t = std::time::Instant::now();
        let esito = self.call_service(servizio, &chiamata).await;
        self.metriche.fase(Fase::Service, t.elapsed());
        let esito = match esito {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, "service failed: EGOV_IT_300");
                if let Some(id) = &dup_id {
                    // The service did not complete: the sender may retry with the same id.
                    let _ = self.store.release(id).await;
                }
                return self
                    .errore(
                        ex,
                        &busta,
                        vec![Eccezione::processamento("Servizio")],
                        Some(&e.to_string()),
                    )
                    .await;
            }
        };
        ex.eccezioni = info.clone();
        if !sync {
            return self
                .finish(
                    ex,
                    200,
                    String::new(),
                    Outcome::Ok,
                    dup_id.as_deref(),
                    esito.note,
                )
                .await;
        }
        let body = match self.risposta_sincrona(&busta, info, &esito).await {
            Ok((id, body)) => {
                ex.response_id = Some(id);
                body
            }
            Err(e) => {
                warn!(error = %e, "cannot build the response");
                return self
                    .errore(
                        ex,
                        &busta,
                        vec![Eccezione::processamento("Risposta")],
                        Some(&e.to_string()),
                    )
                    .await;
            }
        };
        let status = if esito.fault { 500 } else { 200 };
        self.finish(ex, status, body, Outcome::Ok, dup_id.as_deref(), esito.note)
            .await
    }

    async fn call_service(
        &self,
        servizio: &Servizio,
        c: &Chiamata<'_>,
    ) -> Result<Esito, ServiceError> {
        if let Some(url) = &servizio.backend {
            let timeout = std::time::Duration::from_secs(self.config.limits.request_timeout_secs);
            return service::backend::call(&self.http, url, c, timeout, self.limits).await;
        }
        match servizio.handler.as_deref() {
            Some("cliclavoro") => {
                let registry = self.registry();
                let esito = service::cliclavoro::handle(c, &self.nodo(&registry)).await;
                // New forwards wait in the outbox: wake its worker.
                self.outbox_notify.notify_one();
                esito
            }
            Some("echo") => Ok(service::echo(c)),
            Some(other) => Err(ServiceError::UnknownHandler(other.to_string())),
            None => Err(ServiceError::NoHandler(format!(
                "{}/{}",
                servizio.tipo, servizio.nome
            ))),
        }
    }

    /// Authentication (the TLS identity is the Mittente), authorization (the partner may call
    /// the service) and message security (the WS-Security signature, by partner policy).
    fn sicurezza(
        &self,
        b: &Busta,
        env: &Envelope<'_>,
        peer: &crate::server::Peer,
        registry: &crate::registry::Registry,
    ) -> Result<(), (Eccezione, String)> {
        use crate::wssec::pki;
        let Some(mittente) = b.mittente.as_ref() else {
            return Ok(());
        };
        let non_autorizzato = |pos: &str, why: String| {
            Err((Eccezione::grave(Codice::MITTENTE_NON_AUTORIZZATO, pos), why))
        };
        let trust = self.trust.get();
        if let Some(cert) = &peer.cert {
            match trust.soggetto(cert, registry) {
                Some(p) if p.same(mittente) => {}
                Some(p) => {
                    return non_autorizzato(
                        "Mittente",
                        format!(
                        "il certificato TLS è di {p}, ma la busta dichiara il mittente {mittente}"
                    ),
                    )
                }
                None => {
                    return non_autorizzato(
                        "Mittente",
                        format!(
                        "il certificato TLS (CN {}) non corrisponde ad alcun soggetto registrato",
                        pki::cn(cert).unwrap_or_default()
                    ),
                    )
                }
            }
        }
        let partner = registry.soggetto(mittente);
        if let (Some(p), Some(s)) = (partner, &b.servizio) {
            if !p.servizi.is_empty() && !p.servizi.contains(&s.nome) {
                return non_autorizzato(
                    "Servizio",
                    format!("{mittente} non è autorizzato al servizio {}", s.nome),
                );
            }
            let servizio = b
                .destinatario
                .as_ref()
                .and_then(|d| registry.servizio(d, &s.tipo, &s.nome));
            if servizio.is_some_and(|sv| !sv.ammette(mittente)) {
                return non_autorizzato(
                    "Servizio",
                    format!("{mittente} non è tra i fruitori del servizio {}", s.nome),
                );
            }
        }
        let politica = partner
            .and_then(|p| p.firma)
            .unwrap_or(self.config.wssec.verifica);
        self.verifica_firma(env, mittente, registry, politica)
    }

    /// Checks a busta's WS-Security signature by policy, and that its token belongs to `parte`
    /// (its registered certificate, or one of our CAs' naming it).
    pub(crate) fn verifica_firma(
        &self,
        env: &Envelope<'_>,
        parte: &crate::egov::Parte,
        registry: &crate::registry::Registry,
        politica: crate::registry::PoliticaFirma,
    ) -> Result<(), (Eccezione, String)> {
        use crate::registry::PoliticaFirma;
        use crate::wssec::{dsig, pki};
        let firmata = env
            .header_blocks
            .iter()
            .any(|h| h.is(dsig::NS_WSSE, "Security"));
        if politica == PoliticaFirma::Off || (politica == PoliticaFirma::Optional && !firmata) {
            return Ok(());
        }
        let now = self.now().with_timezone(&chrono::Utc);
        let regole = dsig::Regole {
            now,
            tolleranza: chrono::Duration::seconds(self.config.wssec.tolleranza_secs),
            durata_massima: chrono::Duration::seconds(self.config.wssec.timestamp_ttl_secs),
            copertura: self.config.wssec.copertura,
        };
        let firmato = dsig::verifica(env.src, env, &regole)
            .map_err(|e| (Eccezione::grave(e.codice(), e.posizione()), e.to_string()))?;
        let trust = self.trust.get();
        let cert = &firmato.cert;
        let fp = crate::tls::sha256(cert);
        let registered = registry
            .certificato(parte)
            .is_some_and(|c| crate::tls::sha256(&c) == fp);
        // Checking the CA's signature costs an RSA verification: only when not pinned.
        let by_ca = || {
            pki::emesso_da(cert, &trust.cas, now)
                && pki::cn(cert).as_deref() == Some(parte.nome.as_str())
        };
        let politica_err = |why: String| {
            Err((
                Eccezione::grave(Codice::SICUREZZA, "Security/BinarySecurityToken"),
                why,
            ))
        };
        if !(registered || by_ca()) {
            if let Some(other) = trust.pinned.get(&fp) {
                return Err((
                    Eccezione::grave(Codice::MITTENTE_NON_AUTORIZZATO, "Mittente"),
                    format!("la busta di {parte} è firmata con il certificato di {other}"),
                ));
            }
            return politica_err(format!(
                "il certificato della firma non è quello registrato per {parte}"
            ));
        }
        if let Err(e) = pki::controlla(cert, now) {
            return politica_err(format!("certificato della firma: {e}"));
        }
        Ok(())
    }

    /// Signs an outgoing busta when signing is on. A message that cannot be signed is sent as it
    /// is, with a warning (it would be a local defect, not a partner's).
    pub fn firma_uscente(&self, msg: String) -> String {
        let Some(me) = self.identita().filter(|_| self.config.firma_on()) else {
            return msg;
        };
        let t = std::time::Instant::now();
        let firmato = crate::wssec::dsig::firma(
            &msg,
            &me.key,
            &me.cert,
            self.now().with_timezone(&chrono::Utc),
            chrono::Duration::seconds(self.config.wssec.timestamp_ttl_secs),
            self.config.wssec.copertura,
        );
        self.metriche.fase(Fase::Sign, t.elapsed());
        match firmato {
            Ok(signed) => signed,
            Err(e) => {
                warn!(error = %e, "outgoing busta not signed");
                msg
            }
        }
    }

    /// The response busta of a synchronous exchange around the service's answer.
    async fn risposta_sincrona(
        &self,
        req: &Busta,
        info: Vec<Eccezione>,
        esito: &Esito,
    ) -> Result<(String, String), crate::store::StoreError> {
        let now = self.now();
        let responder = self.responder(req);
        let id = self.new_id(&responder, now).await?;
        let mut h = risposte::intestazione_risposta(
            req,
            &responder,
            req.mittente.clone().unwrap_or_else(mittente_sconosciuto),
            id.clone(),
            now.naive_local(),
            self.config.busta.tempo,
        );
        if !info.is_empty() {
            h.eccezioni = Some(info);
        }
        let header = crate::egov::writer::write(&h);
        Ok((
            id,
            self.firma_uscente(soap::envelope_ns(&[&header], &esito.body, &esito.body_ns)),
        ))
    }

    /// The soggetto that answers a busta: its destinatario when hosted here, else our own.
    fn responder(&self, req: &Busta) -> crate::registry::Soggetto {
        let registry = self.registry();
        req.destinatario
            .as_ref()
            .filter(|d| self.is_local(d))
            .and_then(|d| registry.soggetto(d).cloned())
            .unwrap_or_else(|| self.own())
    }

    async fn errore(
        &self,
        ex: &mut Exchange,
        req: &Busta,
        eccezioni: Vec<Eccezione>,
        detail: Option<&str>,
    ) -> Answer {
        let outcome = if eccezioni.iter().all(|e| e.codice == Codice::PROCESSAMENTO) {
            Outcome::ErroreProcessamento
        } else {
            Outcome::ErroreBusta
        };
        self.errore_esito(ex, req, eccezioni, detail, outcome).await
    }

    async fn errore_esito(
        &self,
        ex: &mut Exchange,
        req: &Busta,
        eccezioni: Vec<Eccezione>,
        detail: Option<&str>,
        outcome: Outcome,
    ) -> Answer {
        let now = self.now();
        let responder = self.responder(req);
        let registry = self.registry();
        let destinatario = req
            .mittente
            .clone()
            .filter(|m| registry.soggetto(m).is_some())
            .unwrap_or_else(mittente_sconosciuto);
        let id = match self.new_id(&responder, now).await {
            Ok(id) => id,
            Err(e) => {
                warn!(error = %e, "cannot issue an Identificatore");
                return Answer::soap(500, crate::server::processing_fault());
            }
        };
        let h = risposte::intestazione_risposta(
            req,
            &responder,
            destinatario,
            id.clone(),
            now.naive_local(),
            self.config.busta.tempo,
        );
        ex.response_id = Some(id);
        ex.eccezioni = eccezioni.clone();
        let detail_xml = detail.map(|d| {
            format!(
                "<pdd:dettaglio xmlns:pdd=\"urn:pdd:errore\">{}</pdd:dettaglio>",
                crate::xml::escape_text(d)
            )
        });
        let body = self.firma_uscente(risposte::busta_errore(h, eccezioni, detail_xml.as_deref()));
        let note = detail
            .map(str::to_string)
            .or_else(|| Some(elenco(&ex.eccezioni)));
        self.finish(ex, 500, body, outcome, None, note).await
    }

    /// A bare Fault EGOV_IT_001: no busta could be read, or its structure is broken.
    async fn fault_001(&self, ex: &mut Exchange, reason: Option<String>) -> Answer {
        self.finish(ex, 500, risposte::fault_001(), Outcome::Fault, None, reason)
            .await
    }

    /// Records the exchange durably, then answers.
    async fn finish(
        &self,
        ex: &mut Exchange,
        status: u16,
        body: String,
        outcome: Outcome,
        dup_id: Option<&str>,
        note: Option<String>,
    ) -> Answer {
        ex.http_status = status;
        ex.outcome = outcome;
        if ex.note.is_none() {
            ex.note = note;
        }
        ex.response = body.as_bytes().to_vec();
        if let Err(e) = self.commit(ex, dup_id).await {
            warn!(error = %e, "exchange not stored: answering EGOV_IT_300");
            if let Some(id) = dup_id {
                let _ = self.store.release(id).await;
            }
            self.diagnostica(
                Diagnostico::new(
                    Severita::Fatal,
                    "RicezioneBuste",
                    "PDD_STORE",
                    "scambio non registrato (store non disponibile): risposto EGOV_IT_300",
                )
                .scambio(ex.seq, ex.request_id.as_deref()),
            )
            .await;
            return Answer::soap(500, crate::server::processing_fault());
        }
        if let Some(d) = diagnostici::porta_applicativa(ex) {
            self.diagnostica(d).await;
        }
        info!(
            outcome = outcome.as_str(),
            status,
            mittente = ex.mittente.as_deref().unwrap_or("-"),
            servizio = ex.servizio.as_deref().unwrap_or("-"),
            azione = ex.azione.as_deref().unwrap_or("-"),
            "exchange"
        );
        Answer::soap(status, body)
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
